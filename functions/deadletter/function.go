package deadletter

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"

	"example.com/platform/shared/app"
	"example.com/platform/shared/events"
	"example.com/platform/shared/handler"
	"example.com/platform/shared/retry"
	"example.com/platform/shared/warehouse/sinkenv"
)

// EntryPoint is the function's entry point (function.yaml entry_point).
const EntryPoint = "DeadLetter"

// Environment variables read besides app's common ones (see package
// sinkenv).
const (
	// EnvProject and EnvDataset name the analytics dataset (set by
	// Terraform). Required with the bigquery sink.
	EnvProject = sinkenv.EnvProject
	EnvDataset = sinkenv.EnvDataset
	// EnvSink selects the sink: bigquery (default), jsonl or memory. The
	// last two are for local runs and log a WARNING at start.
	EnvSink = "DEADLETTER_SINK"
	// EnvJSONLPath is the jsonl sink's file (default dead-letters.jsonl).
	EnvJSONLPath = "DEADLETTER_JSONL_PATH"
	// EnvInsertTimeout bounds one insert including the client's own
	// retries (Go duration, default 10s).
	EnvInsertTimeout = sinkenv.EnvInsertTimeout
)

// sinkEnv is the function's warehouse sink configuration.
var sinkEnv = sinkenv.Config{Sink: EnvSink, JSONLPath: EnvJSONLPath, DefaultJSONLPath: "dead-letters.jsonl"}

const (
	handlerTimeout = 25 * time.Second
	retryAttempts  = 2
)

var lazy = app.NewLazy(buildFrom(os.Getenv), nil)

func init() {
	functions.HTTP(EntryPoint, lazy.ServeHTTP)
}

func needs(getenv func(string) string) app.Needs {
	return app.Needs{Vars: sinkEnv.Vars(getenv)}
}

func buildFrom(getenv func(string) string) func(context.Context) (http.Handler, error) {
	return func(ctx context.Context) (http.Handler, error) { return build(ctx, getenv) }
}

// build wires the production handler: no database, no Pub/Sub (the
// archive publishes nothing), one warehouse sink.
func build(ctx context.Context, getenv func(string) string) (http.Handler, error) {
	env, err := app.LoadEnv(getenv, needs(getenv))
	if err != nil {
		return nil, err
	}
	logger := app.NewLogger(nil, env)
	sink, _, err := sinkEnv.Open(ctx, env, Tables(), logger)
	if err != nil {
		return nil, err
	}
	return NewHandler(&Service{Sink: sink}, logger, env.Function), nil
}

// Handler is the archive's push endpoint. It is safe for concurrent use.
//
// Every push is archived, whatever its body: 204 once the row is written,
// 503 when the insert failed transiently (or the body could not be read),
// 500 when it failed permanently (the table rejects the row); never 2xx for
// a message that was not archived, so Pub/Sub redelivers it and, in the
// end, forwards it to deadletter.dlq. Panics are recovered (503) and
// logged with their stack; each delivery is logged in Cloud Logging format.
type Handler struct {
	archive handler.Func
	logger  *slog.Logger
}

// NewHandler returns the push endpoint around svc, with the shared
// Recover, Observe, Timeout and Retry middlewares (no dead-lettering, no
// idempotency store: insertId deduplicates).
func NewHandler(svc *Service, logger *slog.Logger, consumer string) *Handler {
	if logger == nil {
		logger = slog.Default()
	}
	if consumer == "" {
		consumer = "deadletter"
	}
	return &Handler{
		logger: logger,
		archive: handler.Chain(svc.Archive,
			handler.Recover(logger),
			handler.Observe(consumer, logger),
			handler.Timeout(handlerTimeout),
			handler.Retry(retry.Policy{MaxAttempts: retryAttempts}),
			handler.Recover(logger),
		),
	}
}

// ServeHTTP archives one push.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "push deliveries are POST requests", http.StatusMethodNotAllowed)
		return
	}
	// Read the whole message (up to Pub/Sub's limit); whether it is a
	// valid event does not matter here.
	in, decodeErr := events.DecodeRequest(r, events.MaxMessageBytes)
	ctx := in.Context(r.Context())
	if decodeErr != nil {
		if retry.IsTransient(decodeErr) {
			// The body could not be read whole: archive it on redelivery.
			h.logger.WarnContext(ctx, "dead letter body unreadable; Pub/Sub will redeliver", "error", decodeErr.Error())
			http.Error(w, "read body: "+decodeErr.Error(), http.StatusServiceUnavailable)
			return
		}
		h.logger.InfoContext(ctx, "archiving a dead letter that is not a valid event", "decode_error", decodeErr.Error())
	}
	err := h.archive(ctx, in)
	switch {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case retry.IsPermanent(err):
		http.Error(w, "not archived, redeliver: "+err.Error(), http.StatusInternalServerError)
	default:
		http.Error(w, "not archived, redeliver: "+err.Error(), http.StatusServiceUnavailable)
	}
}
