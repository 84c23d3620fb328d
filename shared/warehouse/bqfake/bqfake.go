// Package bqfake is an httptest server that speaks the BigQuery REST
// contract of tabledata.insertAll, so the real cloud.google.com/go/bigquery
// client can be tested offline:
//
//	POST /bigquery/v2/projects/{project}/datasets/{dataset}/tables/{table}/insertAll
//	request  {"kind", "skipInvalidRows", "ignoreUnknownValues", "rows": [{"insertId", "json"}]}
//	response {"kind": "bigquery#tableDataInsertAllResponse",
//	          "insertErrors": [{"index", "errors": [{"reason", "location", "message"}]}]}
//
// Like BigQuery it validates each row against the table's schema
// (warehouse.Schema.Validate: required columns, types, unknown columns),
// rejects the whole request when a row is invalid and skipInvalidRows is
// false (invalid rows "invalid", the others "stopped"), deduplicates rows by
// insertId per table, answers an unknown project, dataset or table with 404
// notFound and an empty request with 400 invalid, and writes errors in
// Google's JSON error format so the client returns a *googleapi.Error.
// Faults (5xx, 403 quotaExceeded, 429) can be injected.
//
// It is safe for concurrent use.
package bqfake

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"testing"

	"google.golang.org/api/option"

	"example.com/platform/shared/warehouse"
)

// Fault is an error response to inject.
type Fault struct {
	Status  int    // HTTP status, e.g. 503
	Reason  string // Google error reason, e.g. backendError, quotaExceeded
	Message string
}

// Common faults.
var (
	BackendError      = Fault{Status: http.StatusServiceUnavailable, Reason: "backendError", Message: "Backend error. Please try again."}
	InternalError     = Fault{Status: http.StatusInternalServerError, Reason: "internalError", Message: "An internal error occurred and the request could not be completed."}
	QuotaExceeded     = Fault{Status: http.StatusForbidden, Reason: "quotaExceeded", Message: "Exceeded rate limits: too many table update operations for this table."}
	RateLimitExceeded = Fault{Status: http.StatusForbidden, Reason: "rateLimitExceeded", Message: "Exceeded rate limits: too many api requests per user per method."}
	TooManyRequests   = Fault{Status: http.StatusTooManyRequests, Reason: "rateLimitExceeded", Message: "Too many requests."}
	AccessDenied      = Fault{Status: http.StatusForbidden, Reason: "accessDenied", Message: "Access Denied: Table: User does not have bigquery.tables.updateData permission."}
)

// Request is one insertAll request the server received.
type Request struct {
	Table               string
	SkipInvalidRows     bool
	IgnoreUnknownValues bool
	Rows                []warehouse.Stored
}

// Server is the fake.
type Server struct {
	Project, Dataset string

	srv *httptest.Server

	mu       sync.Mutex
	tables   map[string]warehouse.Schema
	rows     map[string][]warehouse.Stored
	seen     map[string]map[string]bool
	faults   []Fault // consumed one per request
	sticky   *Fault  // returned until Heal
	requests []Request
}

// New starts a server holding tables in project/dataset; it is closed when
// tb ends.
func New(tb testing.TB, project, dataset string, tables map[string]warehouse.Schema) *Server {
	tb.Helper()
	s := &Server{
		Project: project, Dataset: dataset,
		tables: maps.Clone(tables),
		rows:   map[string][]warehouse.Stored{},
		seen:   map[string]map[string]bool{},
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	tb.Cleanup(s.srv.Close)
	return s
}

// URL is the server's base URL.
func (s *Server) URL() string { return s.srv.URL }

// Endpoint is the client's API endpoint (option.WithEndpoint).
func (s *Server) Endpoint() string { return s.srv.URL + "/bigquery/v2/" }

// ClientOptions connect a bigquery.Client to the server.
func (s *Server) ClientOptions() []option.ClientOption {
	return []option.ClientOption{
		option.WithEndpoint(s.Endpoint()),
		option.WithoutAuthentication(),
		option.WithHTTPClient(s.srv.Client()),
	}
}

// Rows returns the rows written to table, in order.
func (s *Server) Rows(table string) []warehouse.Stored {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]warehouse.Stored(nil), s.rows[table]...)
}

// Requests returns every insertAll request received (faulted ones too).
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// FailNext makes the next len(faults) requests fail, in order.
func (s *Server) FailNext(faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, faults...)
}

// FailAll makes every request fail with f until Heal.
func (s *Server) FailAll(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sticky = &f
}

// SetSchema replaces (or adds) a table's schema, as a schema change of the
// deployed table would: later inserts are validated against it.
func (s *Server) SetSchema(table string, schema warehouse.Schema) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tables[table] = schema
}

// Host is the server's host:port, the value of BIGQUERY_EMULATOR_HOST
// that points warehouse.NewBigQuery at it.
func (s *Server) Host() string { return s.srv.Listener.Addr().String() }

// Heal clears every injected fault.
func (s *Server) Heal() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sticky, s.faults = nil, nil
}

// The /bigquery/v2 prefix is optional, as on BigQuery emulators (whose
// endpoint is the bare host).
var insertAllPath = regexp.MustCompile(`^(?:/bigquery/v2)?/projects/([^/]+)/datasets/([^/]+)/tables/([^/]+)/insertAll$`)

type insertAllRequest struct {
	Kind                string `json:"kind"`
	SkipInvalidRows     bool   `json:"skipInvalidRows"`
	IgnoreUnknownValues bool   `json:"ignoreUnknownValues"`
	TemplateSuffix      string `json:"templateSuffix"`
	Rows                []struct {
		InsertID string          `json:"insertId"`
		JSON     json.RawMessage `json:"json"`
	} `json:"rows"`
}

type errorProto struct {
	Reason    string `json:"reason"`
	Location  string `json:"location,omitempty"`
	DebugInfo string `json:"debugInfo,omitempty"`
	Message   string `json:"message"`
}

type insertError struct {
	Index  int          `json:"index"`
	Errors []errorProto `json:"errors"`
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	m := insertAllPath.FindStringSubmatch(r.URL.Path)
	if m == nil {
		writeError(w, Fault{Status: http.StatusNotFound, Reason: "notFound", Message: "bqfake: no such method: " + r.Method + " " + r.URL.Path})
		return
	}
	if r.Method != http.MethodPost {
		writeError(w, Fault{Status: http.StatusMethodNotAllowed, Reason: "badRequest", Message: "insertAll is a POST"})
		return
	}
	project, dataset, table := m[1], m[2], m[3]
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, Fault{Status: http.StatusBadRequest, Reason: "invalid", Message: "read body: " + err.Error()})
		return
	}
	var req insertAllRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, Fault{Status: http.StatusBadRequest, Reason: "invalid", Message: "Invalid JSON payload received. " + err.Error()})
		return
	}
	rows := make([]warehouse.Stored, len(req.Rows))
	var parseErrs = make([]error, len(req.Rows))
	for i, row := range req.Rows {
		v, err := warehouse.DecodeJSONRow(row.JSON)
		rows[i] = warehouse.Stored{InsertID: row.InsertID, Values: v}
		parseErrs[i] = err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, Request{Table: table, SkipInvalidRows: req.SkipInvalidRows, IgnoreUnknownValues: req.IgnoreUnknownValues, Rows: rows})
	if s.sticky != nil {
		writeError(w, *s.sticky)
		return
	}
	if len(s.faults) > 0 {
		f := s.faults[0]
		s.faults = s.faults[1:]
		writeError(w, f)
		return
	}
	if project != s.Project || dataset != s.Dataset {
		writeError(w, Fault{Status: http.StatusNotFound, Reason: "notFound", Message: fmt.Sprintf("Not found: Dataset %s:%s", project, dataset)})
		return
	}
	schema, ok := s.tables[table]
	if !ok {
		writeError(w, Fault{Status: http.StatusNotFound, Reason: "notFound", Message: fmt.Sprintf("Not found: Table %s:%s.%s", project, dataset, table)})
		return
	}
	if req.TemplateSuffix != "" {
		writeError(w, Fault{Status: http.StatusBadRequest, Reason: "invalid", Message: "bqfake: templateSuffix is not supported"})
		return
	}
	if len(rows) == 0 {
		writeError(w, Fault{Status: http.StatusBadRequest, Reason: "invalid", Message: "No rows present in the request."})
		return
	}

	var ierrs []insertError
	valid := make([]bool, len(rows))
	for i, row := range rows {
		if parseErrs[i] != nil {
			ierrs = append(ierrs, insertError{Index: i, Errors: []errorProto{{Reason: "invalid", Message: "Invalid JSON row: " + parseErrs[i].Error()}}})
			continue
		}
		values := row.Values
		if req.IgnoreUnknownValues {
			values = known(schema, values)
			rows[i].Values = values
		}
		if fe := schema.Validate(values); fe != nil {
			ierrs = append(ierrs, insertError{Index: i, Errors: []errorProto{{Reason: "invalid", Location: fe.Location, Message: fe.Message}}})
			continue
		}
		valid[i] = true
	}
	if len(ierrs) > 0 && !req.SkipInvalidRows {
		// All or nothing: every valid row is reported as stopped.
		for i := range rows {
			if valid[i] {
				ierrs = append(ierrs, insertError{Index: i, Errors: []errorProto{{Reason: "stopped", Message: ""}}})
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"kind": "bigquery#tableDataInsertAllResponse", "insertErrors": ierrs})
		return
	}
	if s.seen[table] == nil {
		s.seen[table] = map[string]bool{}
	}
	for i, row := range rows {
		if !valid[i] {
			continue
		}
		if row.InsertID != "" {
			if s.seen[table][row.InsertID] {
				continue
			}
			s.seen[table][row.InsertID] = true
		}
		s.rows[table] = append(s.rows[table], row)
	}
	resp := map[string]any{"kind": "bigquery#tableDataInsertAllResponse"}
	if len(ierrs) > 0 {
		resp["insertErrors"] = ierrs
	}
	writeJSON(w, http.StatusOK, resp)
}

func known(schema warehouse.Schema, values map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range values {
		if _, ok := schema.Field(k); ok {
			out[k] = v
		}
	}
	return out
}

var statusText = map[int]string{
	400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 405: "INVALID_ARGUMENT",
	429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE",
}

// writeError writes Google's JSON error body, which the client library
// turns into a *googleapi.Error with the reason in Errors[0].Reason.
func writeError(w http.ResponseWriter, f Fault) {
	writeJSON(w, f.Status, map[string]any{"error": map[string]any{
		"code":    f.Status,
		"message": f.Message,
		"errors":  []map[string]string{{"domain": "global", "reason": f.Reason, "message": f.Message}},
		"status":  statusText[f.Status],
	}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
