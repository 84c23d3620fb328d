// Package dlqtest builds dead-letter archive rows for tests and serves
// them from a minimal BigQuery jobs.query server.
//
// The server speaks the REST contract the BigQuery Go client uses for
// Query.Read on its fast path: POST .../projects/{project}/queries with a
// QueryRequest, answered by a complete QueryResponse (schema, rows as
// {"f":[{"v":...}]} with every scalar as a string, TIMESTAMP as integer
// microseconds because the client asks for useInt64Timestamp), and GET
// .../projects/{project}/queries/{job} with the same rows, for a client that
// falls back to getQueryResults. It does not evaluate SQL: it returns
// every row (the archive reader filters again on its side), except that a
// query with an @id parameter returns only that message id. Requests are
// recorded so tests can check the SQL and its parameters.
package dlqtest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	dlarchive "example.com/platform/shared/deadletter/archive"
	"example.com/platform/shared/warehouse"
	"example.com/platform/tools/ops/dlq"
)

// Row encodes e as the dead-letter function writes it (the insertAll JSON
// form of package warehouse): one object with the dead_letters columns.
// Zero times and empty strings are left out (NULL), except the required
// columns.
func Row(e dlq.Entry) map[string]any {
	attrs, _ := json.Marshal(e.Attributes)
	body, enc := string(e.Body), dlarchive.EncodingUTF8
	if !utf8.Valid(e.Body) {
		body, enc = base64.StdEncoding.EncodeToString(e.Body), dlarchive.EncodingBase64
	}
	received := e.ReceivedAt
	if received.IsZero() {
		received = e.DeadLetteredAt
	}
	v := map[string]any{
		"message_id":       e.MessageID,
		"attributes":       json.RawMessage(attrs),
		"body":             body,
		"body_encoding":    enc,
		"dead_lettered_at": e.DeadLetteredAt,
		"received_at":      received,
	}
	opt := func(k, s string) {
		if s != "" {
			v[k] = s
		}
	}
	opt("original_topic", e.OriginalTopic)
	opt("subscription", e.Subscription)
	opt("reason_class", e.ReasonClass)
	opt("reason_message", e.ReasonMessage)
	if e.DeliveryAttempts > 0 {
		v["delivery_attempts"] = e.DeliveryAttempts
	}
	if !e.PublishTime.IsZero() {
		v["publish_time"] = e.PublishTime
	}
	row, err := warehouse.Encode(v)
	if err != nil {
		panic(err)
	}
	return row
}

// Schema is the dead_letters schema the fake server and WriteJSONL use
// (a test keeps it equal to functions/deadletter/schema/dead_letters.json).
func Schema() warehouse.Schema {
	var s warehouse.Schema
	for _, f := range schema {
		s = append(s, warehouse.Field{Name: f["name"], Type: f["type"], Mode: f["mode"]})
	}
	return s
}

// WriteJSONL writes entries to a new archive file in a temporary directory
// of tb through the warehouse JSONL sink, exactly as the local stack's
// dead-letter function does (insert id = message id), and returns its path.
func WriteJSONL(tb testing.TB, entries ...dlq.Entry) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "dead-letters.jsonl")
	sink, err := warehouse.NewJSONL(path, map[string]warehouse.Schema{dlq.DefaultTable: Schema()})
	if err != nil {
		tb.Fatal(err)
	}
	defer sink.Close()
	for _, e := range entries {
		values := map[string]any{}
		for k, v := range Row(e) {
			values[k] = v
		}
		if err := sink.Insert(context.Background(), dlq.DefaultTable, []warehouse.Row{{InsertID: e.MessageID, Values: values}}); err != nil {
			tb.Fatalf("dlqtest: write %s: %v", e.MessageID, err)
		}
	}
	return path
}

// WriteLines writes each value as one JSON line to a new file of tb and
// returns its path (for rows the sink would not write: duplicates, bare
// rows, other tables).
func WriteLines(tb testing.TB, lines ...any) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "lines.jsonl")
	var b strings.Builder
	for _, l := range lines {
		line, err := json.Marshal(l)
		if err != nil {
			tb.Fatal(err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}

// Request is one query the server received.
type Request struct {
	Query      string
	Parameters map[string]string
}

// BigQuery is a running jobs.query server.
type BigQuery struct {
	// URL is the endpoint to give the client (option.WithEndpoint).
	URL string

	mu       sync.Mutex
	rows     []map[string]any
	requests []Request
}

var schema = []map[string]string{
	{"name": "message_id", "type": "STRING", "mode": "REQUIRED"},
	{"name": "original_topic", "type": "STRING", "mode": "NULLABLE"},
	{"name": "subscription", "type": "STRING", "mode": "NULLABLE"},
	{"name": "attributes", "type": "JSON", "mode": "NULLABLE"},
	{"name": "body", "type": "STRING", "mode": "NULLABLE"},
	{"name": "body_encoding", "type": "STRING", "mode": "REQUIRED"},
	{"name": "reason_class", "type": "STRING", "mode": "NULLABLE"},
	{"name": "reason_message", "type": "STRING", "mode": "NULLABLE"},
	{"name": "delivery_attempts", "type": "INTEGER", "mode": "NULLABLE"},
	{"name": "publish_time", "type": "TIMESTAMP", "mode": "NULLABLE"},
	{"name": "dead_lettered_at", "type": "TIMESTAMP", "mode": "REQUIRED"},
	{"name": "received_at", "type": "TIMESTAMP", "mode": "REQUIRED"},
}

// NewBigQuery starts a server holding entries as archive rows; it is
// closed when tb ends.
func NewBigQuery(tb testing.TB, entries ...dlq.Entry) *BigQuery {
	tb.Helper()
	b := &BigQuery{}
	for _, e := range entries {
		b.rows = append(b.rows, Row(e))
	}
	srv := httptest.NewServer(http.HandlerFunc(b.serve))
	tb.Cleanup(srv.Close)
	b.URL = srv.URL
	return b
}

// Requests returns the queries received so far.
func (b *BigQuery) Requests() []Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Request(nil), b.requests...)
}

type queryRequest struct {
	Query           string `json:"query"`
	QueryParameters []struct {
		Name           string `json:"name"`
		ParameterValue struct {
			Value string `json:"value"`
		} `json:"parameterValue"`
	} `json:"queryParameters"`
}

func (b *BigQuery) serve(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimSuffix(r.URL.Path, "/")
	parts := strings.Split(strings.Trim(path, "/"), "/")
	// .../projects/{p}/queries or .../projects/{p}/queries/{job}
	i := len(parts) - 1
	for i >= 0 && parts[i] != "queries" {
		i--
	}
	if i < 2 || parts[i-2] != "projects" {
		writeError(w, http.StatusNotFound, "not found: "+r.Method+" "+r.URL.Path)
		return
	}
	project := parts[i-1]
	var id string
	switch {
	case r.Method == http.MethodPost && i == len(parts)-1:
		var req queryRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, "bad query request: "+err.Error())
			return
		}
		rec := Request{Query: req.Query, Parameters: map[string]string{}}
		for _, p := range req.QueryParameters {
			rec.Parameters[p.Name] = p.ParameterValue.Value
		}
		b.mu.Lock()
		b.requests = append(b.requests, rec)
		b.mu.Unlock()
		id = rec.Parameters["id"]
	case r.Method == http.MethodGet && i == len(parts)-2:
	default:
		writeError(w, http.StatusNotFound, "not found: "+r.Method+" "+r.URL.Path)
		return
	}
	rows, err := b.encodeRows(id)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"kind":         "bigquery#queryResponse",
		"jobComplete":  true,
		"jobReference": map[string]string{"projectId": project, "jobId": "job-1", "location": "US"},
		"schema":       map[string]any{"fields": schema},
		"rows":         rows,
		"totalRows":    strconv.Itoa(len(rows)),
	})
}

func (b *BigQuery) encodeRows(id string) ([]any, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := []any{}
	for _, row := range b.rows {
		if id != "" && row["message_id"] != id {
			continue
		}
		var cells []any
		for _, f := range schema {
			v, ok := row[f["name"]]
			if !ok || v == nil {
				cells = append(cells, map[string]any{"v": nil})
				continue
			}
			switch f["type"] {
			case "TIMESTAMP":
				t, ok := warehouse.ParseTimestamp(v)
				if !ok {
					return nil, fmt.Errorf("bad timestamp %v", v)
				}
				v = strconv.FormatInt(t.UnixMicro(), 10)
			default:
				v = fmt.Sprint(v)
			}
			cells = append(cells, map[string]any{"v": v})
		}
		out = append(out, map[string]any{"f": cells})
	}
	return out, nil
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"error": map[string]any{"code": code, "message": msg, "errors": []any{map[string]string{"message": msg, "reason": "notFound"}}},
	})
}

// Time parses an RFC 3339 time for test tables, panicking on error.
func Time(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}
