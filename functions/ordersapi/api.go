package ordersapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"example.com/platform/shared/domain/orders"
	"example.com/platform/shared/observability"
	"example.com/platform/shared/retry"
)

// Routes. The outbox relay is a service of its own (functions/relay).
const (
	OrdersPath  = "/v1/orders"
	HealthzPath = "/healthz"
	ReadyzPath  = "/readyz"
)

// ActionCancel is the custom method of an order that cancels it:
// POST /v1/orders/{id}:cancel.
const ActionCancel = "cancel"

// Media types.
const (
	contentTypeJSON    = "application/json"
	contentTypeProblem = "application/problem+json"
)

// ProblemBase prefixes the type URI of every problem the API returns
// (a fork replaces it with its own documentation address).
const ProblemBase = "https://example.com/problems/"

// Problem types.
const (
	ProblemValidation       = ProblemBase + "validation-error"
	ProblemMalformed        = ProblemBase + "malformed-request"
	ProblemUnsupportedMedia = ProblemBase + "unsupported-media-type"
	ProblemBodyTooLarge     = ProblemBase + "body-too-large"
	ProblemIdempotencyReuse = ProblemBase + "idempotency-key-reused"
	ProblemNotFound         = ProblemBase + "not-found"
	ProblemOrderShipped     = ProblemBase + "order-already-shipped"
	ProblemMethodNotAllowed = ProblemBase + "method-not-allowed"
	ProblemUnavailable      = ProblemBase + "unavailable"
	ProblemInternal         = ProblemBase + "internal-error"
)

// Problem is an RFC 9457 problem details object, sent as
// application/problem+json. Errors lists the invalid fields.
type Problem struct {
	Type     string       `json:"type"`
	Title    string       `json:"title"`
	Status   int          `json:"status"`
	Detail   string       `json:"detail,omitempty"`
	Instance string       `json:"instance,omitempty"`
	Errors   []FieldError `json:"errors,omitempty"`
}

// Check is one readiness check of /readyz.
type Check struct {
	Name string
	Func func(ctx context.Context) error
}

// Options tunes the HTTP API. Zero values are the defaults.
type Options struct {
	// Checks are the readiness checks of /readyz (none: always ready).
	Checks []Check
	// CheckTimeout bounds each readiness check. Default 5s.
	CheckTimeout time.Duration
	// Logger receives request failures. Default the service's logger.
	Logger *slog.Logger
}

type api struct {
	svc  *Service
	opts Options
}

// NewHandler returns the HTTP API over svc:
//
//	POST /v1/orders             create an order (201 + Location; Idempotency-Key)
//	GET  /v1/orders/{id}        the order, its status and status history
//	POST /v1/orders/{id}:cancel cancel the order (200 + the order; idempotent):
//	                            optional body {"reason":"…"}; 404 unknown
//	                            order, 409 already shipped
//	GET  /healthz               liveness: the process serves requests
//	GET  /readyz                readiness: every Check passes
//
// Every error is an RFC 9457 application/problem+json document; a
// validation error names each invalid field. The handler is safe for
// concurrent use and recovers panics as 500 problems.
func NewHandler(svc *Service, opts Options) http.Handler {
	if opts.CheckTimeout <= 0 {
		opts.CheckTimeout = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = svc.logger()
	}
	a := &api{svc: svc, opts: opts}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+OrdersPath, a.create)
	mux.HandleFunc(OrdersPath, methodNotAllowed("POST"))
	// A wildcard is a whole path segment, so {id}:action is one segment
	// that orderAction splits.
	mux.HandleFunc("GET "+OrdersPath+"/{id}", a.get)
	mux.HandleFunc("POST "+OrdersPath+"/{id}", a.orderAction)
	mux.HandleFunc(OrdersPath+"/{id}", a.orderMethodNotAllowed)
	mux.HandleFunc("GET "+HealthzPath, Healthz)
	mux.HandleFunc(HealthzPath, methodNotAllowed("GET, HEAD"))
	mux.HandleFunc("GET "+ReadyzPath, a.readyz)
	mux.HandleFunc(ReadyzPath, methodNotAllowed("GET, HEAD"))
	mux.HandleFunc("/", noRoute)
	return a.middleware(mux)
}

// middleware continues the caller's trace (traceparent or
// X-Cloud-Trace-Context) in the request context, so logs join it and the
// order.created event carries it, and turns a panic into a 500 problem.
func (a *api) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if tc, ok := observability.TraceFromHeader(r.Header); ok {
			ctx = observability.WithTrace(ctx, observability.NewChildSpan(tc))
			r = r.WithContext(ctx)
		}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				a.opts.Logger.ErrorContext(ctx, "panic serving request", slog.Any("panic", v),
					slog.String("stack", string(debug.Stack())), slog.String("path", r.URL.Path))
				writeProblem(w, r, Problem{Type: ProblemInternal, Title: "Internal error", Status: http.StatusInternalServerError})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func (a *api) create(w http.ResponseWriter, r *http.Request) {
	if fe := checkContentType(r.Header.Get("Content-Type")); fe != nil {
		w.Header().Set("Accept-Post", contentTypeJSON)
		writeProblem(w, r, Problem{Type: ProblemUnsupportedMedia, Title: "Unsupported media type",
			Status: http.StatusUnsupportedMediaType, Detail: fe.Message, Errors: []FieldError{*fe}})
		return
	}
	keys := r.Header.Values("Idempotency-Key")
	key := ""
	if len(keys) > 0 {
		key = keys[0]
	}
	var fe *FieldError
	switch {
	case len(keys) > 1:
		fe = &FieldError{"Idempotency-Key", "must be sent once"}
	case len(keys) == 1 && key == "":
		fe = &FieldError{"Idempotency-Key", "must not be empty"}
	default:
		fe = checkIdempotencyKey(key)
	}
	if fe != nil {
		writeProblem(w, r, Problem{Type: ProblemValidation, Title: "Invalid request", Status: http.StatusBadRequest,
			Detail: fe.Field + ": " + fe.Message, Errors: []FieldError{*fe}})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		bodyReadProblem(w, r, err, MaxBodyBytes)
		return
	}
	req, errs := decodeCreate(body)
	if len(errs) > 0 {
		badBody(w, r, errs)
		return
	}
	res, err := a.svc.Create(r.Context(), req, key)
	if errors.Is(err, orders.ErrIdempotencyKeyReused) {
		writeProblem(w, r, Problem{Type: ProblemIdempotencyReuse, Title: "Idempotency key reused with a different request",
			Status: http.StatusUnprocessableEntity,
			Detail: "idempotency key reused with a different request: this Idempotency-Key created an order from another request body; send a new key for a new order",
			Errors: []FieldError{{"Idempotency-Key", "was used for a different request"}}})
		return
	}
	if err != nil {
		a.fail(w, r, "create order", err)
		return
	}
	// The body is a function of what was stored at creation, so a replay
	// is byte-identical to the first response.
	location := OrdersPath + "/" + res.Order.ID
	w.Header().Set("Location", location)
	if res.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	writeJSON(w, http.StatusCreated, creationView(res.Order))
}

func (a *api) get(w http.ResponseWriter, r *http.Request) {
	raw, action, hasAction := strings.Cut(r.PathValue("id"), ":")
	if hasAction {
		a.actionMethodNotAllowed(w, r, action)
		return
	}
	id, ok := orderID(w, r, raw)
	if !ok {
		return
	}
	o, err := a.svc.Get(r.Context(), id)
	if isNotFound(err) {
		writeProblem(w, r, Problem{Type: ProblemNotFound, Title: "Order not found", Status: http.StatusNotFound,
			Detail: "no order " + id})
		return
	}
	if err != nil {
		a.fail(w, r, "get order", err)
		return
	}
	writeJSON(w, http.StatusOK, view(o))
}

// orderID validates the id segment of an order's path and returns it in
// lower case, or answers 400 and reports false.
func orderID(w http.ResponseWriter, r *http.Request, id string) (string, bool) {
	if u, err := uuid.Parse(id); err != nil || len(id) != 36 || u == uuid.Nil {
		fe := FieldError{"id", fmt.Sprintf("must be an order id (a UUID such as 3f0c5c2e-8d53-4c5f-9b7e-2a1d4c6e8f00), got %q", truncate(id, 64))}
		writeProblem(w, r, Problem{Type: ProblemValidation, Title: "Invalid request", Status: http.StatusBadRequest,
			Detail: fe.Field + ": " + fe.Message, Errors: []FieldError{fe}})
		return "", false
	}
	return strings.ToLower(id), true
}

// orderAction serves POST /v1/orders/{id}:action. POST on the order
// itself is not allowed, an unknown action is not found.
func (a *api) orderAction(w http.ResponseWriter, r *http.Request) {
	raw, action, hasAction := strings.Cut(r.PathValue("id"), ":")
	switch {
	case !hasAction:
		methodNotAllowed("GET, HEAD")(w, r)
	case action != ActionCancel:
		noRoute(w, r)
	default:
		a.cancel(w, r, raw)
	}
}

// orderMethodNotAllowed answers the methods no route of an order's path
// serves.
func (a *api) orderMethodNotAllowed(w http.ResponseWriter, r *http.Request) {
	_, action, hasAction := strings.Cut(r.PathValue("id"), ":")
	if hasAction {
		a.actionMethodNotAllowed(w, r, action)
		return
	}
	methodNotAllowed("GET, HEAD")(w, r)
}

// actionMethodNotAllowed answers a method other than POST on an order's
// action: 405 for a known action, 404 for an unknown one.
func (a *api) actionMethodNotAllowed(w http.ResponseWriter, r *http.Request, action string) {
	if action != ActionCancel {
		noRoute(w, r)
		return
	}
	methodNotAllowed("POST")(w, r)
}

// cancel serves POST /v1/orders/{id}:cancel for the id segment raw.
func (a *api) cancel(w http.ResponseWriter, r *http.Request, raw string) {
	id, ok := orderID(w, r, raw)
	if !ok {
		return
	}
	req, ok := readCancel(w, r)
	if !ok {
		return
	}
	res, err := a.svc.Cancel(r.Context(), id, req)
	switch {
	case isNotFound(err):
		writeProblem(w, r, Problem{Type: ProblemNotFound, Title: "Order not found", Status: http.StatusNotFound,
			Detail: "no order " + id})
	case errors.Is(err, ErrAlreadyShipped):
		writeProblem(w, r, Problem{Type: ProblemOrderShipped, Title: "Order already shipped", Status: http.StatusConflict,
			Detail: "order already shipped: order " + id + " can no longer be cancelled"})
	case err != nil:
		a.fail(w, r, "cancel order", err)
	default:
		writeJSON(w, http.StatusOK, view(res.Order))
	}
}

// readCancel reads and decodes the optional body of a cancellation, or
// answers the problem and reports false. An empty body needs no
// Content-Type; any other must be JSON.
func readCancel(w http.ResponseWriter, r *http.Request) (CancelRequest, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxCancelBodyBytes))
	if err != nil {
		bodyReadProblem(w, r, err, MaxCancelBodyBytes)
		return CancelRequest{}, false
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if fe := checkContentType(r.Header.Get("Content-Type")); fe != nil {
			w.Header().Set("Accept-Post", contentTypeJSON)
			writeProblem(w, r, Problem{Type: ProblemUnsupportedMedia, Title: "Unsupported media type",
				Status: http.StatusUnsupportedMediaType, Detail: fe.Message, Errors: []FieldError{*fe}})
			return CancelRequest{}, false
		}
	}
	req, errs := decodeCancel(body)
	if len(errs) > 0 {
		badBody(w, r, errs)
		return CancelRequest{}, false
	}
	return req, true
}

// bodyReadProblem answers a request whose body could not be read: 413 when
// it exceeds limit bytes, else 400.
func bodyReadProblem(w http.ResponseWriter, r *http.Request, err error, limit int64) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		msg := fmt.Sprintf("must be at most %d bytes", limit)
		writeProblem(w, r, Problem{Type: ProblemBodyTooLarge, Title: "Request body too large",
			Status: http.StatusRequestEntityTooLarge, Detail: "body " + msg, Errors: []FieldError{{"body", msg}}})
		return
	}
	writeProblem(w, r, Problem{Type: ProblemMalformed, Title: "Malformed request body", Status: http.StatusBadRequest,
		Detail: "reading the body failed: " + err.Error(), Errors: []FieldError{{"body", "could not be read"}}})
}

// badBody answers the field errors of a decoded body: 400, malformed when
// the body as a whole is wrong.
func badBody(w http.ResponseWriter, r *http.Request, errs []FieldError) {
	p := Problem{Type: ProblemValidation, Title: "Invalid request", Status: http.StatusBadRequest, Errors: errs}
	if errs[0].Field == "body" {
		p.Type, p.Title = ProblemMalformed, "Malformed request body"
	}
	p.Detail = summary(errs)
	writeProblem(w, r, p)
}

func noRoute(w http.ResponseWriter, r *http.Request) {
	writeProblem(w, r, Problem{Type: ProblemNotFound, Title: "Not found", Status: http.StatusNotFound,
		Detail: fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path)})
}

// Healthz is the liveness endpoint: 200 while the process serves requests.
// It checks no dependency.
func Healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readiness is the body of /readyz.
type readiness struct {
	Status string            `json:"status"` // ready or unavailable
	Checks map[string]string `json:"checks"` // name -> "ok" or the error
}

func (a *api) readyz(w http.ResponseWriter, r *http.Request) {
	res := readiness{Status: "ready", Checks: map[string]string{}}
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for _, c := range a.opts.Checks {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(r.Context(), a.opts.CheckTimeout)
			defer cancel()
			err := c.Func(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.Status = "unavailable"
				res.Checks[c.Name] = err.Error()
				return
			}
			res.Checks[c.Name] = "ok"
		})
	}
	wg.Wait()
	status := http.StatusOK
	if res.Status != "ready" {
		status = http.StatusServiceUnavailable
		a.opts.Logger.WarnContext(r.Context(), "not ready", slog.Any("checks", res.Checks))
	}
	writeJSON(w, status, res)
}

// fail answers an unexpected error: 503 (retry later, with the same
// Idempotency-Key) unless it is marked permanent, then 500. The details
// are logged, not sent.
func (a *api) fail(w http.ResponseWriter, r *http.Request, what string, err error) {
	a.opts.Logger.ErrorContext(r.Context(), what+" failed", slog.Any("error", err), slog.String("path", r.URL.Path))
	if retry.IsPermanent(err) {
		writeProblem(w, r, Problem{Type: ProblemInternal, Title: "Internal error", Status: http.StatusInternalServerError,
			Detail: what + " failed"})
		return
	}
	w.Header().Set("Retry-After", "1")
	writeProblem(w, r, Problem{Type: ProblemUnavailable, Title: "Temporarily unavailable", Status: http.StatusServiceUnavailable,
		Detail: what + " failed; retry later (with the same Idempotency-Key, if any)"})
}

func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeProblem(w, r, Problem{Type: ProblemMethodNotAllowed, Title: "Method not allowed", Status: http.StatusMethodNotAllowed,
			Detail: fmt.Sprintf("%s does not allow %s; allowed: %s", r.URL.Path, r.Method, allow)})
	}
}

// checkContentType accepts application/json with no charset or UTF-8.
func checkContentType(v string) *FieldError {
	if v == "" {
		return &FieldError{"Content-Type", "is required: send application/json"}
	}
	mt, params, err := mime.ParseMediaType(v)
	if err != nil || mt != contentTypeJSON {
		return &FieldError{"Content-Type", fmt.Sprintf("must be application/json, got %q", truncate(v, 80))}
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return &FieldError{"Content-Type", fmt.Sprintf("charset must be utf-8, got %q", truncate(cs, 40))}
	}
	return nil
}

func summary(errs []FieldError) string {
	parts := make([]string, 0, len(errs))
	for i, e := range errs {
		if i == 5 {
			parts = append(parts, fmt.Sprintf("and %d more", len(errs)-5))
			break
		}
		parts = append(parts, e.Field+": "+e.Message)
	}
	return strings.Join(parts, "; ")
}

func writeProblem(w http.ResponseWriter, r *http.Request, p Problem) {
	if p.Instance == "" {
		p.Instance = r.URL.Path
	}
	b, _ := json.Marshal(p)
	write(w, p.Status, contentTypeProblem, b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own value types reach here; they always encode.
		panic(fmt.Sprintf("encode response: %v", err))
	}
	write(w, status, contentTypeJSON, b)
}

func write(w http.ResponseWriter, status int, contentType string, b []byte) {
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", fmt.Sprint(len(b)))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// EntryPoint is the function's entry point (function.yaml entry_point).
const EntryPoint = "OrdersAPI"
