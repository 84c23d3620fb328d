// Package fakegateway is an in-process payment gateway that speaks the
// contract the payment function calls (functions/payment/README.md), for
// tests and the local stack. It can be told, per order, per customer or for
// every request, to approve, decline, fail with a status code, hang until
// the caller gives up, charge and then hang (the response is lost), or to
// answer slowly, and it counts what it did so tests can assert that a
// payment was charged, or refunded, exactly once.
//
// # Contract
//
//	POST /v1/charges
//	Content-Type: application/json
//	Idempotency-Key: <key>                 required
//	Authorization: Bearer <api key>        checked only when Config.APIKey is set
//	{"order_id":"…","amount":1000,"currency":"EUR","customer_id":"…"}
//
//	200 {"status":"approved","reference":"gw_…"}
//	402 {"status":"declined","decline_code":"insufficient_funds"}   (or 200, see Behavior.DeclineStatus)
//	400 invalid request, 401 bad API key, 422 key reused with another body:
//	    {"error":"…"}
//	5xx / 429 (Behavior.Status): {"error":"…"}
//
//	POST /v1/refunds
//	Content-Type: application/json
//	Idempotency-Key: <key>                 required
//	Authorization: Bearer <api key>        checked only when Config.APIKey is set
//	{"charge_reference":"gw_…","amount":1000,"currency":"EUR","order_id":"…"}
//
//	200 {"status":"refunded","reference":"rf_…"}
//	404 no approved charge has that reference: {"error":"…"}
//	400 invalid request, or an amount larger than what is left of the
//	    charge (or another currency or order than the charge's), 401 bad
//	    API key, 422 key reused with another body: {"error":"…"}
//	5xx / 429 (Behavior.Status): {"error":"…"}
//
// A charge is the first approve or decline answered for an Idempotency-Key.
// Every later request with the same key and the same body gets the same
// answer (status code and body) without charging again, whatever the
// behaviour says by then; the same key with a different body is a 422.
// Failures (fail, hang, the delay of a slow answer) happen before the key
// is looked at, like an outage in front of a real gateway, and record
// nothing.
//
// A refund is the first 200 answered for an Idempotency-Key of
// /v1/refunds (refund keys are separate from charge keys): later requests
// with the same key and body get the same answer without refunding again,
// even when the charge is fully refunded by then; another body is a 422.
// Rules apply to refunds as to charges (matched by the refund's order id
// and the charge's customer), except that a decline rule refunds: a refund
// is never declined. ApproveThenHang refunds and then hangs.
//
// # Control
//
// Tests use the Go API (SetDefault, SetCustomer, SetOrder, Hold, Stats, …).
// Programs that cannot, such as the local stack's end-to-end tests, use the
// control endpoints, which take and return JSON:
//
//	PUT    /_fake/behavior   {"scope":"default|customer|order","id":"…","mode":"decline",
//	                          "decline_code":"…","status":503,"delay":"2s","times":1}
//	DELETE /_fake/behavior?scope=customer&id=…
//	GET    /_fake/stats      Stats
//	GET    /_fake/charges    []Charge
//	GET    /_fake/refunds    []Refund
//	POST   /_fake/reset      forget behaviours, charges and counters
//	GET    /healthz          200 while serving (readiness of the local stack)
//
// A Gateway is safe for concurrent use.
package fakegateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Paths of the contract and of the control endpoints.
const (
	ChargesPath  = "/v1/charges"
	RefundsPath  = "/v1/refunds"
	BehaviorPath = "/_fake/behavior"
	StatsPath    = "/_fake/stats"
	ChargesList  = "/_fake/charges"
	RefundsList  = "/_fake/refunds"
	ResetPath    = "/_fake/reset"
	HealthPath   = "/healthz"
)

// IdempotencyKeyHeader is the request header carrying the caller's key.
const IdempotencyKeyHeader = "Idempotency-Key"

// Answers of the contract.
const (
	StatusApproved = "approved"
	StatusDeclined = "declined"
	StatusRefunded = "refunded"
)

// DefaultDeclineCode is the decline code of a decline behaviour without one.
const DefaultDeclineCode = "insufficient_funds"

// Mode is what the gateway does with a request.
type Mode string

// Modes.
const (
	// Approve charges and answers 200 approved (the default).
	Approve Mode = "approve"
	// Decline charges (records a declined attempt) and answers declined.
	Decline Mode = "decline"
	// Fail answers Behavior.Status (default 503) and records nothing.
	Fail Mode = "fail"
	// Hang never answers: it waits until the caller gives up (the request's
	// context ends) and records nothing.
	Hang Mode = "hang"
	// ApproveThenHang charges and records the approval, then hangs until
	// the caller gives up: the response is lost on the way back, the case
	// the Idempotency-Key exists for.
	ApproveThenHang Mode = "approve_then_hang"
)

// Valid reports whether m is a known mode.
func (m Mode) Valid() bool {
	switch m {
	case Approve, Decline, Fail, Hang, ApproveThenHang:
		return true
	}
	return false
}

// Behavior says how to answer the requests a rule matches.
type Behavior struct {
	Mode Mode `json:"mode"`
	// DeclineCode of a Decline (default DefaultDeclineCode).
	DeclineCode string `json:"decline_code,omitempty"`
	// DeclineStatus is the HTTP status of a decline: 402 (default) or 200.
	DeclineStatus int `json:"decline_status,omitempty"`
	// Status of a Fail (default 503).
	Status int `json:"status,omitempty"`
	// Delay makes the answer slow: the gateway waits this long (or until
	// the caller gives up) before doing anything else.
	Delay time.Duration `json:"delay,omitempty"`
	// Times limits the rule to the next Times requests it matches; then it
	// is removed and the next rule applies (order, customer, default,
	// approve). Zero means for ever.
	Times int `json:"times,omitempty"`
}

// MarshalJSON writes Delay as a Go duration string ("2s").
func (b Behavior) MarshalJSON() ([]byte, error) {
	type plain Behavior
	return json.Marshal(struct {
		plain
		Delay string `json:"delay,omitempty"`
	}{plain(b), durString(b.Delay)})
}

// UnmarshalJSON reads Delay as a Go duration string ("2s", "150ms").
func (b *Behavior) UnmarshalJSON(data []byte) error {
	type plain Behavior
	var v struct {
		plain
		Delay string `json:"delay,omitempty"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	*b = Behavior(v.plain)
	b.Delay = 0
	if v.Delay != "" {
		d, err := time.ParseDuration(v.Delay)
		if err != nil {
			return fmt.Errorf("delay: %w", err)
		}
		b.Delay = d
	}
	return nil
}

func durString(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// Validate checks b.
func (b Behavior) Validate() error {
	var probs []string
	if !b.Mode.Valid() {
		probs = append(probs, fmt.Sprintf("mode %q is not one of approve, decline, fail, hang, approve_then_hang", b.Mode))
	}
	if b.Status != 0 && (b.Status < 400 || b.Status > 599) {
		probs = append(probs, fmt.Sprintf("status %d is not an error status", b.Status))
	}
	if b.DeclineStatus != 0 && b.DeclineStatus != http.StatusOK && b.DeclineStatus != http.StatusPaymentRequired {
		probs = append(probs, fmt.Sprintf("decline_status %d is not 200 or 402", b.DeclineStatus))
	}
	if b.Delay < 0 || b.Times < 0 {
		probs = append(probs, "delay and times must not be negative")
	}
	if len(probs) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalidBehavior, strings.Join(probs, "; "))
	}
	return nil
}

// ErrInvalidBehavior is returned for a behaviour that Validate rejects.
var ErrInvalidBehavior = errors.New("fakegateway: invalid behavior")

// ChargeRequest is the body of POST /v1/charges.
type ChargeRequest struct {
	OrderID    string `json:"order_id"`
	Amount     int64  `json:"amount"`
	Currency   string `json:"currency"`
	CustomerID string `json:"customer_id"`
}

// ChargeResponse is the body of an approve or decline answer.
type ChargeResponse struct {
	Status      string `json:"status"`
	Reference   string `json:"reference,omitempty"`
	DeclineCode string `json:"decline_code,omitempty"`
}

// Charge is one charge the gateway executed (approved or declined).
type Charge struct {
	Key string `json:"idempotency_key"`
	ChargeRequest
	ChargeResponse
	At time.Time `json:"at"`
}

// RefundRequest is the body of POST /v1/refunds.
type RefundRequest struct {
	// ChargeReference is the reference of the approved charge to refund.
	ChargeReference string `json:"charge_reference"`
	Amount          int64  `json:"amount"`
	Currency        string `json:"currency"`
	OrderID         string `json:"order_id"`
}

// RefundResponse is the body of a refund's 200 answer.
type RefundResponse struct {
	Status    string `json:"status"`
	Reference string `json:"reference"`
}

// Refund is one refund the gateway executed.
type Refund struct {
	Key string `json:"idempotency_key"`
	RefundRequest
	RefundResponse
	At time.Time `json:"at"`
}

// KeyStats counts the requests of one Idempotency-Key.
type KeyStats struct {
	Requests int `json:"requests"`
	Charges  int `json:"charges"`
	Refunds  int `json:"refunds"`
}

// Stats counts what the gateway did since it started or was reset.
type Stats struct {
	// Requests is every POST /v1/charges, valid or not.
	Requests int `json:"requests"`
	// Charges executed: Approved + Declined.
	Charges  int `json:"charges"`
	Approved int `json:"approved"`
	Declined int `json:"declined"`
	// Replayed requests were answered from an earlier charge of their key.
	Replayed int `json:"replayed"`
	// RefundRequests is every POST /v1/refunds, valid or not.
	RefundRequests int `json:"refund_requests"`
	// Refunds executed.
	Refunds int `json:"refunds"`
	// RefundsReplayed refund requests were answered from an earlier refund
	// of their key.
	RefundsReplayed int `json:"refunds_replayed"`
	// Failed requests (of either endpoint) were answered with the Fail
	// status.
	Failed int `json:"failed"`
	// TimedOut requests (of either endpoint) ended because the caller gave
	// up (hang, slow or held) before an answer.
	TimedOut int `json:"timed_out"`
	// Rejected requests (of either endpoint) were answered 400, 401, 404 or
	// 422.
	Rejected int `json:"rejected"`
	// Keys counts requests and charges per Idempotency-Key.
	Keys map[string]KeyStats `json:"keys"`
}

// Config configures a Gateway. The zero value is valid.
type Config struct {
	// APIKey, when set, must arrive as "Authorization: Bearer <APIKey>";
	// other requests get 401.
	APIKey string
	// Default is the behaviour when no rule matches (default Approve).
	Default Behavior
	// Now is the clock of Charge.At and Refund.At. Default time.Now.
	Now func() time.Time
}

type rule struct {
	b    Behavior
	left int // remaining uses when b.Times > 0
}

type record struct {
	hash   [32]byte
	status int
	body   []byte
}

// balance is what is left to refund of an approved charge.
type balance struct {
	charge   Charge
	refunded int64
}

// Gateway is the fake gateway; it is an http.Handler.
type Gateway struct {
	cfg Config

	mu        sync.Mutex
	def       *rule
	customers map[string]*rule
	orders    map[string]*rule
	records   map[string]*record // charges by Idempotency-Key
	charges   []Charge
	balances  map[string]*balance // approved charges by reference
	refundRec map[string]*record  // refunds by Idempotency-Key
	refunds   []Refund
	stats     Stats
	hold      chan struct{} // non-nil while held; closed on release
	changed   chan struct{} // closed and replaced whenever counters change
	closed    chan struct{}
	closeOnce sync.Once
}

// New returns a Gateway. It panics on an invalid cfg.Default (a programming
// error in a test or a flag already validated by the caller).
func New(cfg Config) *Gateway {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	g := &Gateway{cfg: cfg, closed: make(chan struct{})}
	g.resetLocked()
	if cfg.Default.Mode != "" {
		if err := g.SetDefault(cfg.Default); err != nil {
			panic(err)
		}
	}
	return g
}

func (g *Gateway) resetLocked() {
	g.def = nil
	g.customers = map[string]*rule{}
	g.orders = map[string]*rule{}
	g.records = map[string]*record{}
	g.charges = nil
	g.balances = map[string]*balance{}
	g.refundRec = map[string]*record{}
	g.refunds = nil
	g.stats = Stats{Keys: map[string]KeyStats{}}
	if g.changed != nil {
		close(g.changed)
	}
	g.changed = make(chan struct{})
}

func newRule(b Behavior) (*rule, error) {
	if b.Mode == "" {
		b.Mode = Approve
	}
	if err := b.Validate(); err != nil {
		return nil, err
	}
	return &rule{b: b, left: b.Times}, nil
}

// SetDefault sets the behaviour of requests no order or customer rule
// matches.
func (g *Gateway) SetDefault(b Behavior) error {
	r, err := newRule(b)
	if err != nil {
		return err
	}
	g.mu.Lock()
	g.def = r
	g.mu.Unlock()
	return nil
}

// SetCustomer sets the behaviour of requests for customer id.
func (g *Gateway) SetCustomer(id string, b Behavior) error {
	r, err := newRule(b)
	if err != nil {
		return err
	}
	g.mu.Lock()
	g.customers[id] = r
	g.mu.Unlock()
	return nil
}

// SetOrder sets the behaviour of requests for order id; it takes precedence
// over a customer rule.
func (g *Gateway) SetOrder(id string, b Behavior) error {
	r, err := newRule(b)
	if err != nil {
		return err
	}
	g.mu.Lock()
	g.orders[id] = r
	g.mu.Unlock()
	return nil
}

// Clear removes the rule of scope ("default", "customer" or "order") and id.
func (g *Gateway) Clear(scope, id string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch scope {
	case "default":
		g.def = nil
	case "customer":
		delete(g.customers, id)
	case "order":
		delete(g.orders, id)
	default:
		return fmt.Errorf("%w: scope %q is not default, customer or order", ErrInvalidBehavior, scope)
	}
	return nil
}

// Reset forgets every rule, charge, refund and counter (not the Config).
func (g *Gateway) Reset() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.resetLocked()
	if g.cfg.Default.Mode != "" {
		g.def, _ = newRule(g.cfg.Default)
	}
}

// Hold makes every charge or refund request that arrives from now on wait, after it
// was counted and before anything else, until release is called (or the
// caller gives up). Tests use it to keep a charge in flight while they send
// duplicates. release is idempotent.
func (g *Gateway) Hold() (release func()) {
	ch := make(chan struct{})
	g.mu.Lock()
	g.hold = ch
	g.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			if g.hold == ch {
				g.hold = nil
			}
			g.mu.Unlock()
			close(ch)
		})
	}
}

// Close releases every request that hangs or is held, answering 503, so a
// server in front of the gateway can shut down. The gateway keeps serving;
// requests that would hang answer 503 from now on.
func (g *Gateway) Close() { g.closeOnce.Do(func() { close(g.closed) }) }

// Stats returns a copy of the counters.
func (g *Gateway) Stats() Stats {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.stats
	s.Keys = make(map[string]KeyStats, len(g.stats.Keys))
	for k, v := range g.stats.Keys {
		s.Keys[k] = v
	}
	return s
}

// ChargesFor returns how many charges were executed for key (0 or 1 unless
// something is badly wrong: that is what tests assert).
func (g *Gateway) ChargesFor(key string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.stats.Keys[key].Charges
}

// RequestsFor returns how many requests arrived with key.
func (g *Gateway) RequestsFor(key string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.stats.Keys[key].Requests
}

// Charges returns the executed charges, oldest first.
func (g *Gateway) Charges() []Charge {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]Charge(nil), g.charges...)
}

// RefundsFor returns how many refunds were executed for key (0 or 1).
func (g *Gateway) RefundsFor(key string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.stats.Keys[key].Refunds
}

// Refunds returns the executed refunds, oldest first.
func (g *Gateway) Refunds() []Refund {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]Refund(nil), g.refunds...)
}

// RefundedFor returns the amount refunded so far of the approved charge
// with reference ref.
func (g *Gateway) RefundedFor(ref string) int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	if b, ok := g.balances[ref]; ok {
		return b.refunded
	}
	return 0
}

// WaitRequests blocks until at least n charge requests have arrived since
// the start or the last Reset, or ctx ends.
func (g *Gateway) WaitRequests(ctx context.Context, n int) error {
	err := g.Wait(ctx, func(s Stats) bool { return s.Requests >= n })
	if err != nil {
		return fmt.Errorf("fakegateway: waiting for %d requests: %w", n, err)
	}
	return nil
}

// Wait blocks until cond holds for the counters, or ctx ends. cond is
// called with the gateway's lock held: it must not call the Gateway.
func (g *Gateway) Wait(ctx context.Context, cond func(Stats) bool) error {
	for {
		g.mu.Lock()
		ok, ch := cond(g.stats), g.changed
		g.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("fakegateway: %w (stats %+v)", ctx.Err(), g.Stats())
		}
	}
}

// count applies f to the counters under the lock and wakes WaitRequests.
func (g *Gateway) count(f func(s *Stats)) {
	g.mu.Lock()
	f(&g.stats)
	close(g.changed)
	g.changed = make(chan struct{})
	g.mu.Unlock()
}

func (g *Gateway) countKey(s *Stats, key string, f func(k *KeyStats)) {
	if key == "" {
		return
	}
	k := s.Keys[key]
	f(&k)
	s.Keys[key] = k
}

// resolve picks the behaviour for a request about order orderID of
// customer customerID, consuming one use of a limited rule.
func (g *Gateway) resolve(orderID, customerID string) Behavior {
	g.mu.Lock()
	defer g.mu.Unlock()
	take := func(r *rule, drop func()) (Behavior, bool) {
		if r == nil {
			return Behavior{}, false
		}
		if r.b.Times > 0 {
			r.left--
			if r.left <= 0 {
				drop()
			}
		}
		return r.b, true
	}
	if b, ok := take(g.orders[orderID], func() { delete(g.orders, orderID) }); ok {
		return b
	}
	if b, ok := take(g.customers[customerID], func() { delete(g.customers, customerID) }); ok {
		return b
	}
	if b, ok := take(g.def, func() { g.def = nil }); ok {
		return b
	}
	return Behavior{Mode: Approve}
}

// ServeHTTP serves the contract and the control endpoints.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == ChargesPath:
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, http.StatusMethodNotAllowed, "use POST")
			return
		}
		g.serveCharge(w, r)
	case r.URL.Path == RefundsPath:
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, http.StatusMethodNotAllowed, "use POST")
			return
		}
		g.serveRefund(w, r)
	case strings.HasPrefix(r.URL.Path, "/_fake/"):
		g.serveControl(w, r)
	case r.URL.Path == HealthPath:
		writeJSON(w, map[string]string{"status": "ok"})
	default:
		writeError(w, http.StatusNotFound, "no such endpoint")
	}
}

const maxBody = 64 << 10

func (g *Gateway) serveCharge(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get(IdempotencyKeyHeader)
	g.count(func(s *Stats) {
		s.Requests++
		g.countKey(s, key, func(k *KeyStats) { k.Requests++ })
	})
	var req ChargeRequest
	body, ok := g.readRequest(w, r, &req, "charge")
	if !ok {
		return
	}
	if msg := validate(req, key); msg != "" {
		g.reject(w, http.StatusBadRequest, msg)
		return
	}
	b := g.resolve(req.OrderID, req.CustomerID)
	if !g.behave(w, r, b) {
		return
	}
	status, resp, ok := g.charge(key, body, req, b)
	if !ok {
		g.reject(w, http.StatusUnprocessableEntity, "idempotency key reused with a different request")
		return
	}
	g.answer(w, r, b, status, resp)
}

func (g *Gateway) serveRefund(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get(IdempotencyKeyHeader)
	g.count(func(s *Stats) {
		s.RefundRequests++
		g.countKey(s, key, func(k *KeyStats) { k.Requests++ })
	})
	var req RefundRequest
	if _, ok := g.readRequest(w, r, &req, "refund"); !ok {
		return
	}
	if msg := validateRefund(req, key); msg != "" {
		g.reject(w, http.StatusBadRequest, msg)
		return
	}
	b := g.resolve(req.OrderID, g.customerOf(req.ChargeReference))
	if !g.behave(w, r, b) {
		return
	}
	status, resp := g.refund(key, req)
	if status != http.StatusOK {
		g.count(func(s *Stats) { s.Rejected++ })
	}
	g.answer(w, r, b, status, resp)
}

// readRequest checks the API key, reads the body and decodes it strictly
// into v, answering the request when that fails.
func (g *Gateway) readRequest(w http.ResponseWriter, r *http.Request, v any, what string) ([]byte, bool) {
	if g.cfg.APIKey != "" && r.Header.Get("Authorization") != "Bearer "+g.cfg.APIKey {
		g.reject(w, http.StatusUnauthorized, "missing or wrong API key")
		return nil, false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		g.reject(w, http.StatusBadRequest, "read body: "+err.Error())
		return nil, false
	}
	if len(body) > maxBody {
		g.reject(w, http.StatusRequestEntityTooLarge, "body too large")
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		g.reject(w, http.StatusBadRequest, "decode "+what+": "+err.Error())
		return nil, false
	}
	return body, true
}

func (g *Gateway) reject(w http.ResponseWriter, status int, msg string) {
	g.count(func(s *Stats) { s.Rejected++ })
	writeError(w, status, msg)
}

// behave applies the failures of b (delay, fail, hang) and reports whether
// the request goes on to be executed.
func (g *Gateway) behave(w http.ResponseWriter, r *http.Request, b Behavior) bool {
	ctx := r.Context()
	if !g.wait(ctx, b.Delay) {
		g.gaveUp(w)
		return false
	}
	switch b.Mode {
	case Fail:
		status := b.Status
		if status == 0 {
			status = http.StatusServiceUnavailable
		}
		g.count(func(s *Stats) { s.Failed++ })
		writeError(w, status, "gateway unavailable (fake)")
		return false
	case Hang:
		g.wait(ctx, -1)
		g.gaveUp(w)
		return false
	}
	return true
}

// answer sends an executed request's answer, or loses it (ApproveThenHang).
func (g *Gateway) answer(w http.ResponseWriter, r *http.Request, b Behavior, status int, resp []byte) {
	if b.Mode == ApproveThenHang {
		g.wait(r.Context(), -1)
		g.gaveUp(w)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(resp)
}

// wait waits d (forever when d < 0) and for a Hold to be released. It
// reports false when the caller gave up or the gateway was closed first.
func (g *Gateway) wait(ctx context.Context, d time.Duration) bool {
	g.mu.Lock()
	hold := g.hold
	g.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return false
		case <-g.closed:
			return false
		}
	}
	if d == 0 {
		return true
	}
	var timer <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-timer:
		return true
	case <-ctx.Done():
		return false
	case <-g.closed:
		return false
	}
}

// gaveUp ends a request that got no answer: the caller is gone, or the
// gateway was closed (answer 503 then, so the caller is not left waiting).
func (g *Gateway) gaveUp(w http.ResponseWriter) {
	g.count(func(s *Stats) { s.TimedOut++ })
	select {
	case <-g.closed:
		writeError(w, http.StatusServiceUnavailable, "fake gateway closed")
	default:
		// The client went away; what is written here is never read.
		writeError(w, http.StatusGatewayTimeout, "caller gave up")
	}
}

// charge executes a new charge for key or replays the recorded answer. It
// reports false when key was recorded with a different body.
func (g *Gateway) charge(key string, body []byte, req ChargeRequest, b Behavior) (int, []byte, bool) {
	hash := sha256.Sum256(canonical(req))
	g.mu.Lock()
	defer func() {
		close(g.changed)
		g.changed = make(chan struct{})
		g.mu.Unlock()
	}()
	if rec, ok := g.records[key]; ok {
		if rec.hash != hash {
			return 0, nil, false
		}
		g.stats.Replayed++
		return rec.status, rec.body, true
	}
	var resp ChargeResponse
	status := http.StatusOK
	if b.Mode == Decline {
		resp = ChargeResponse{Status: StatusDeclined, DeclineCode: b.DeclineCode}
		if resp.DeclineCode == "" {
			resp.DeclineCode = DefaultDeclineCode
		}
		status = http.StatusPaymentRequired
		if b.DeclineStatus != 0 {
			status = b.DeclineStatus
		}
		g.stats.Declined++
	} else {
		resp = ChargeResponse{Status: StatusApproved, Reference: "gw_" + randomHex(12)}
		g.stats.Approved++
	}
	g.stats.Charges++
	g.countKey(&g.stats, key, func(k *KeyStats) { k.Charges++ })
	out, _ := json.Marshal(resp)
	g.records[key] = &record{hash: hash, status: status, body: out}
	c := Charge{Key: key, ChargeRequest: req, ChargeResponse: resp, At: g.cfg.Now().UTC()}
	g.charges = append(g.charges, c)
	if resp.Status == StatusApproved {
		g.balances[resp.Reference] = &balance{charge: c}
	}
	return status, out, true
}

// customerOf is the customer of the approved charge with reference ref
// ("" when there is none).
func (g *Gateway) customerOf(ref string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if b, ok := g.balances[ref]; ok {
		return b.charge.CustomerID
	}
	return ""
}

// refund executes a new refund for key or replays the recorded one. A
// request that cannot be executed (unknown charge, too large, key reused
// with another body) is answered with an error and records nothing.
func (g *Gateway) refund(key string, req RefundRequest) (int, []byte) {
	hash := sha256.Sum256(canonical(req))
	g.mu.Lock()
	defer func() {
		close(g.changed)
		g.changed = make(chan struct{})
		g.mu.Unlock()
	}()
	if rec, ok := g.refundRec[key]; ok {
		if rec.hash != hash {
			return errorBody(http.StatusUnprocessableEntity, "idempotency key reused with a different request")
		}
		g.stats.RefundsReplayed++
		return rec.status, rec.body
	}
	bal, ok := g.balances[req.ChargeReference]
	switch {
	case !ok:
		return errorBody(http.StatusNotFound, "no approved charge with reference "+req.ChargeReference)
	case req.Currency != bal.charge.Currency || req.OrderID != bal.charge.OrderID:
		return errorBody(http.StatusBadRequest, "currency and order_id must be the charge's")
	case req.Amount > bal.charge.Amount-bal.refunded:
		return errorBody(http.StatusBadRequest, fmt.Sprintf("amount %d exceeds what is left of the charge (%d of %d)",
			req.Amount, bal.charge.Amount-bal.refunded, bal.charge.Amount))
	}
	bal.refunded += req.Amount
	resp := RefundResponse{Status: StatusRefunded, Reference: "rf_" + randomHex(12)}
	out, _ := json.Marshal(resp)
	g.refundRec[key] = &record{hash: hash, status: http.StatusOK, body: out}
	g.refunds = append(g.refunds, Refund{Key: key, RefundRequest: req, RefundResponse: resp, At: g.cfg.Now().UTC()})
	g.stats.Refunds++
	g.countKey(&g.stats, key, func(k *KeyStats) { k.Refunds++ })
	return http.StatusOK, out
}

func errorBody(status int, msg string) (int, []byte) {
	b, _ := json.Marshal(map[string]string{"error": msg})
	return status, append(b, '\n')
}

// canonical is the request re-encoded, so formatting differences of the
// same request do not count as a different body.
func canonical(req any) []byte {
	b, _ := json.Marshal(req)
	return b
}

func validate(req ChargeRequest, key string) string {
	var probs []string
	if req.CustomerID == "" {
		probs = append(probs, "customer_id is required")
	}
	return problems(probs, key, req.OrderID, req.Amount, req.Currency)
}

func validateRefund(req RefundRequest, key string) string {
	var probs []string
	if req.ChargeReference == "" {
		probs = append(probs, "charge_reference is required")
	}
	return problems(probs, key, req.OrderID, req.Amount, req.Currency)
}

// problems adds the checks charges and refunds share to probs and joins
// them ("" when there are none).
func problems(probs []string, key, orderID string, amount int64, currency string) string {
	if key == "" {
		probs = append([]string{"Idempotency-Key header is required"}, probs...)
	}
	if orderID == "" {
		probs = append(probs, "order_id is required")
	}
	if amount <= 0 {
		probs = append(probs, "amount must be positive")
	}
	if len(currency) != 3 || strings.ToUpper(currency) != currency {
		probs = append(probs, "currency must be a three-letter upper-case code")
	}
	return strings.Join(probs, "; ")
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// BehaviorRule is the body of PUT /_fake/behavior.
type BehaviorRule struct {
	// Scope is "default", "customer" or "order".
	Scope string `json:"scope"`
	// ID is the customer or order id (unused for the default scope).
	ID string `json:"id,omitempty"`
	Behavior
}

// UnmarshalJSON reads the scope, id and the embedded Behavior.
func (r *BehaviorRule) UnmarshalJSON(data []byte) error {
	var head struct {
		Scope string `json:"scope"`
		ID    string `json:"id"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return err
	}
	var b Behavior
	if err := b.UnmarshalJSON(data); err != nil {
		return err
	}
	*r = BehaviorRule{Scope: head.Scope, ID: head.ID, Behavior: b}
	return nil
}

// MarshalJSON writes the scope, id and the behaviour's fields flat.
func (r BehaviorRule) MarshalJSON() ([]byte, error) {
	b, err := r.Behavior.MarshalJSON()
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	m["scope"] = r.Scope
	if r.ID != "" {
		m["id"] = r.ID
	}
	return json.Marshal(m)
}

// Set applies a rule (the Go form of PUT /_fake/behavior).
func (g *Gateway) Set(r BehaviorRule) error {
	switch r.Scope {
	case "default", "":
		return g.SetDefault(r.Behavior)
	case "customer", "order":
		if r.ID == "" {
			return fmt.Errorf("%w: scope %s needs an id", ErrInvalidBehavior, r.Scope)
		}
		if r.Scope == "customer" {
			return g.SetCustomer(r.ID, r.Behavior)
		}
		return g.SetOrder(r.ID, r.Behavior)
	}
	return fmt.Errorf("%w: scope %q is not default, customer or order", ErrInvalidBehavior, r.Scope)
}

func (g *Gateway) serveControl(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == BehaviorPath && r.Method == http.MethodPut:
		var rule BehaviorRule
		if err := json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(&rule); err != nil {
			writeError(w, http.StatusBadRequest, "decode rule: "+err.Error())
			return
		}
		if err := g.Set(rule); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case r.URL.Path == BehaviorPath && r.Method == http.MethodDelete:
		if err := g.Clear(r.URL.Query().Get("scope"), r.URL.Query().Get("id")); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case r.URL.Path == StatsPath && r.Method == http.MethodGet:
		writeJSON(w, g.Stats())
	case r.URL.Path == ChargesList && r.Method == http.MethodGet:
		c := g.Charges()
		if c == nil {
			c = []Charge{}
		}
		writeJSON(w, c)
	case r.URL.Path == RefundsList && r.Method == http.MethodGet:
		rf := g.Refunds()
		if rf == nil {
			rf = []Refund{}
		}
		writeJSON(w, rf)
	case r.URL.Path == ResetPath && r.Method == http.MethodPost:
		g.Reset()
		w.WriteHeader(http.StatusNoContent)
	default:
		writeError(w, http.StatusNotFound, "no such control endpoint or method")
	}
}

// Server is a Gateway served over HTTP on a local port.
type Server struct {
	*Gateway
	// URL is the base URL (http://127.0.0.1:port), the value of
	// PAYMENT_GATEWAY_URL for the function under test.
	URL string
	srv *httptest.Server
}

// NewServer starts a Gateway with cfg on a local port; it is shut down
// (hanging requests released first) when tb ends.
func NewServer(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	g := New(cfg)
	srv := httptest.NewServer(g)
	tb.Cleanup(func() {
		g.Close()
		srv.Close()
	})
	return &Server{Gateway: g, URL: srv.URL, srv: srv}
}

// Client returns an HTTP client for the server.
func (s *Server) Client() *http.Client { return s.srv.Client() }
