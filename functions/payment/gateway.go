package payment

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"example.com/platform/shared/app"
	"example.com/platform/shared/breaker"
	"example.com/platform/shared/retry"
)

// Defaults of GatewayConfig.
const (
	DefaultGatewayTimeout = 10 * time.Second
	DefaultBreakerName    = "payment-gateway"
)

// DefaultGatewayRetry is the in-process retry policy of the gateway client
// when GatewayConfig.Retry is zero: three calls within 25s.
var DefaultGatewayRetry = retry.Policy{MaxAttempts: 3, Initial: 200 * time.Millisecond, Max: 2 * time.Second, Budget: 25 * time.Second}

// Errors of GatewayConfig.Validate.
var (
	ErrNoGatewayURL      = errors.New("payment: gateway base URL is required")
	ErrInvalidGatewayURL = errors.New("payment: gateway base URL must be an absolute http or https URL")
	ErrInvalidTimeout    = errors.New("payment: gateway timeout must not be negative")
)

// maxResponse bounds the body read from the gateway.
const maxResponse = 64 << 10

// Paths of the gateway's API, below GatewayConfig.BaseURL.
const (
	chargesPath = "/v1/charges"
	refundsPath = "/v1/refunds"
)

// GatewayConfig configures HTTPGateway. Zero values of optional fields
// take the defaults.
type GatewayConfig struct {
	// BaseURL is the gateway's base URL, e.g. https://payments.example.com.
	// Required.
	BaseURL string
	// APIKey is sent as "Authorization: Bearer <APIKey>" when set.
	APIKey string
	// Timeout bounds one HTTP attempt (default 10s).
	Timeout time.Duration
	// Retry is the in-process retry of transient failures (default
	// DefaultGatewayRetry).
	Retry retry.Policy
	// Breaker configures the circuit breaker around every attempt; its
	// Name defaults to "payment-gateway".
	Breaker breaker.Config
	// Client sends the requests (default a client with no timeout of its
	// own: Timeout bounds each attempt through its context).
	Client *http.Client
}

// Validate reports the first invalid field as a sentinel error.
func (c GatewayConfig) Validate() error {
	if c.BaseURL == "" {
		return ErrNoGatewayURL
	}
	if err := CheckGatewayURL(c.BaseURL); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidGatewayURL, err)
	}
	if c.Timeout < 0 {
		return ErrInvalidTimeout
	}
	if err := c.Retry.Validate(); err != nil {
		return err
	}
	c.setDefaults()
	return c.Breaker.Validate()
}

func (c *GatewayConfig) setDefaults() {
	if c.Timeout == 0 {
		c.Timeout = DefaultGatewayTimeout
	}
	if c.Retry == (retry.Policy{}) {
		c.Retry = DefaultGatewayRetry
	}
	if c.Breaker.Name == "" {
		c.Breaker.Name = DefaultBreakerName
	}
	if c.Client == nil {
		c.Client = &http.Client{}
	}
}

// CheckGatewayURL reports whether s is an absolute http(s) URL without
// query or fragment.
func CheckGatewayURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("want http(s)://host[/path]")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return errors.New("must not have a query or fragment")
	}
	return nil
}

// HTTPGateway is the Gateway over the gateway's HTTP API (see README.md,
// "Gateway contract"): POST {base}/v1/charges and POST {base}/v1/refunds
// with the Idempotency-Key header. Every attempt of either passes through
// one circuit breaker; transient failures are retried in process with
// backoff and full jitter, always with the same key, so a repeated request
// cannot charge or refund twice. When the breaker is open, the call fails
// at once with a transient error matching breaker.ErrOpen and the retry
// stops. It is safe for concurrent use; make one per process so the
// breaker sees every call.
type HTTPGateway struct {
	cfg     GatewayConfig
	base    string
	breaker *breaker.Breaker
}

// NewHTTPGateway validates cfg and returns the client.
func NewHTTPGateway(cfg GatewayConfig) (*HTTPGateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	b, err := breaker.New(cfg.Breaker)
	if err != nil {
		return nil, err
	}
	return &HTTPGateway{cfg: cfg, base: strings.TrimSuffix(cfg.BaseURL, "/"), breaker: b}, nil
}

// Breaker returns the client's circuit breaker (for health reporting and
// tests).
func (g *HTTPGateway) Breaker() *breaker.Breaker { return g.breaker }

// chargeBody is the JSON body of a charge request.
type chargeBody struct {
	OrderID    string `json:"order_id"`
	Amount     int64  `json:"amount"`
	Currency   string `json:"currency"`
	CustomerID string `json:"customer_id"`
}

// chargeAnswer is the JSON body of a 200 or 402 answer.
type chargeAnswer struct {
	Status      string `json:"status"`
	Reference   string `json:"reference"`
	DeclineCode string `json:"decline_code"`
}

// refundBody is the JSON body of a refund request.
type refundBody struct {
	ChargeReference string `json:"charge_reference"`
	Amount          int64  `json:"amount"`
	Currency        string `json:"currency"`
	OrderID         string `json:"order_id"`
}

// refundAnswer is the JSON body of a refund's 200 answer.
type refundAnswer struct {
	Status    string `json:"status"`
	Reference string `json:"reference"`
}

// reply is an HTTP answer of the gateway whose status the caller
// accepts.
type reply struct {
	status int
	body   []byte
}

// openError stops the retry loop when the breaker rejects a call.
type openError struct{ err error }

func (e *openError) Error() string { return e.err.Error() }
func (e *openError) Unwrap() error { return e.err }

// Charge implements Gateway.
func (g *HTTPGateway) Charge(ctx context.Context, req ChargeRequest) (ChargeResult, error) {
	if req.IdempotencyKey == "" {
		return ChargeResult{}, retry.Permanentf("payment gateway: idempotency key is required")
	}
	body, err := json.Marshal(chargeBody{OrderID: req.OrderID, Amount: req.Amount, Currency: req.Currency, CustomerID: req.CustomerID})
	if err != nil {
		return ChargeResult{}, retry.Permanent(fmt.Errorf("encode charge: %w", err))
	}
	a, err := g.post(ctx, chargesPath, req.IdempotencyKey, body, http.StatusOK, http.StatusPaymentRequired)
	if err != nil {
		return ChargeResult{}, err
	}
	var c chargeAnswer
	if err := json.Unmarshal(a.body, &c); err != nil {
		// Repeating the key repeats the answer: no point retrying.
		return ChargeResult{}, retry.Permanent(fmt.Errorf("payment gateway: malformed answer (HTTP %d): %w", a.status, err))
	}
	switch {
	case c.Status == "approved" && a.status == http.StatusOK && c.Reference != "":
		return ChargeResult{Approved: true, Reference: c.Reference}, nil
	case c.Status == "declined":
		return ChargeResult{DeclineCode: c.DeclineCode}, nil
	}
	return ChargeResult{}, retry.Permanentf("payment gateway: unexpected answer (HTTP %d): %.200s", a.status, a.body)
}

// Refund implements Gateway.
func (g *HTTPGateway) Refund(ctx context.Context, req RefundRequest) (RefundResult, error) {
	if req.IdempotencyKey == "" {
		return RefundResult{}, retry.Permanentf("payment gateway: idempotency key is required")
	}
	body, err := json.Marshal(refundBody{ChargeReference: req.ChargeReference, Amount: req.Amount, Currency: req.Currency, OrderID: req.OrderID})
	if err != nil {
		return RefundResult{}, retry.Permanent(fmt.Errorf("encode refund: %w", err))
	}
	a, err := g.post(ctx, refundsPath, req.IdempotencyKey, body, http.StatusOK)
	if err != nil {
		return RefundResult{}, err
	}
	var r refundAnswer
	if err := json.Unmarshal(a.body, &r); err != nil {
		return RefundResult{}, retry.Permanent(fmt.Errorf("payment gateway: malformed refund answer (HTTP %d): %w", a.status, err))
	}
	if r.Status != "refunded" || r.Reference == "" {
		return RefundResult{}, retry.Permanentf("payment gateway: unexpected refund answer (HTTP %d): %.200s", a.status, a.body)
	}
	return RefundResult{Reference: r.Reference}, nil
}

// post sends body to path with the idempotency key through the retry and
// the breaker, and returns the first answer with one of the accepted
// statuses. Other statuses are errors classified by retry.Classify.
func (g *HTTPGateway) post(ctx context.Context, path, key string, body []byte, accept ...int) (reply, error) {
	var res reply
	err := retry.Do(ctx, g.cfg.Retry, func(ctx context.Context) error {
		a, err := breaker.Call(ctx, g.breaker, func(ctx context.Context) (reply, error) {
			return g.attempt(ctx, g.base+path, key, body, accept)
		})
		if errors.Is(err, breaker.ErrOpen) {
			return retry.Permanent(&openError{err})
		}
		res = a
		return err
	})
	var open *openError
	if errors.As(err, &open) {
		return reply{}, retry.Transient(fmt.Errorf("payment gateway: %w", open.err))
	}
	if err != nil {
		return reply{}, err
	}
	return res, nil
}

// attempt makes one HTTP request.
func (g *HTTPGateway) attempt(ctx context.Context, endpoint, key string, body []byte, accept []int) (reply, error) {
	actx, cancel := context.WithTimeout(ctx, g.cfg.Timeout)
	defer cancel()
	r, err := http.NewRequestWithContext(actx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return reply{}, retry.Permanent(fmt.Errorf("payment gateway: build request: %w", err))
	}
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Accept", "application/json")
	r.Header.Set("Idempotency-Key", key)
	if g.cfg.APIKey != "" {
		r.Header.Set("Authorization", "Bearer "+g.cfg.APIKey)
	}
	resp, err := g.cfg.Client.Do(r)
	if err != nil {
		if ctx.Err() != nil {
			// The caller's own deadline or cancellation, not the gateway's
			// fault: the breaker does not count it.
			return reply{}, retry.Transient(fmt.Errorf("payment gateway: %w", ctx.Err()))
		}
		if actx.Err() != nil {
			return reply{}, retry.Transient(fmt.Errorf("payment gateway: no answer within %v: %w", g.cfg.Timeout, err))
		}
		return reply{}, retry.Transient(fmt.Errorf("payment gateway: %w", err))
	}
	defer func() {
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
		resp.Body.Close()
	}()
	if !slices.Contains(accept, resp.StatusCode) {
		// 408, 425, 429 and 5xx are transient, other 4xx permanent
		// (retry.Classify on HTTPStatusError).
		return reply{}, fmt.Errorf("payment gateway: %w", retry.NewHTTPStatusError(resp))
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return reply{}, retry.Transient(fmt.Errorf("payment gateway: read answer: %w", err))
	}
	return reply{status: resp.StatusCode, body: raw}, nil
}

// Environment variables of the function (besides app's common ones).
const (
	// EnvGatewayURL is the gateway's base URL. Required; function.yaml
	// sets the production value, the local stack the fake gateway's.
	EnvGatewayURL = "PAYMENT_GATEWAY_URL"
	// EnvGatewayTimeout bounds one HTTP call to the gateway (Go duration,
	// default 10s).
	EnvGatewayTimeout = "PAYMENT_GATEWAY_TIMEOUT"
	// EnvGatewayAPIKey is the gateway's API key (a Secret Manager secret
	// in production); optional, for a local gateway that needs none.
	EnvGatewayAPIKey = "PAYMENT_GATEWAY_API_KEY"
)

// gatewayVars declares the gateway's environment variables.
var gatewayVars = []app.Var{
	{Name: EnvGatewayURL, Required: true, Check: CheckGatewayURL},
	{Name: EnvGatewayTimeout, Default: DefaultGatewayTimeout.String(), Check: checkTimeout},
	{Name: EnvGatewayAPIKey},
}

func checkTimeout(v string) error {
	d, err := time.ParseDuration(v)
	if err != nil {
		return err
	}
	if d <= 0 {
		return fmt.Errorf("must be positive")
	}
	return nil
}

// GatewayFromEnv is the HTTP gateway env configures, its circuit breaker
// logging state changes to logger.
func GatewayFromEnv(env app.Env, logger *slog.Logger) (*HTTPGateway, error) {
	timeout, _ := time.ParseDuration(env.Var(EnvGatewayTimeout)) // checked by app
	gw, err := NewHTTPGateway(GatewayConfig{
		BaseURL: env.Var(EnvGatewayURL),
		APIKey:  env.Var(EnvGatewayAPIKey),
		Timeout: timeout,
		Breaker: breaker.Config{OnStateChange: breaker.LogStateChanges(logger)},
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", app.ErrConfig, err)
	}
	return gw, nil
}
