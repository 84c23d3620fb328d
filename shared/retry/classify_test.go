package retry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"google.golang.org/api/googleapi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

type classCase struct {
	name string
	err  error
	want Class
}

func pgErr(code string) error { return &pgconn.PgError{Severity: "ERROR", Code: code, Message: "m"} }

func classCases(t *testing.T) []classCase {
	t.Helper()
	T, P := ClassTransient, ClassPermanent
	cases := []classCase{
		{"unknown", errors.New("boom"), T},
		{"mark permanent", Permanent(errors.New("bad payload")), P},
		{"mark transient", Transient(errors.New("busy")), T},
		{"permanentf", Permanentf("decode order: %w", io.EOF), P},
		{"closest mark wins (permanent outside)", Permanent(Transient(errors.New("x"))), P},
		{"closest mark wins (transient outside)", Transient(Permanent(errors.New("x"))), T},
		{"mark beats rule", Transient(pgErr("23505")), T},
		{"mark beats rule (permanent)", Permanent(context.DeadlineExceeded), P},
		{"context deadline", context.DeadlineExceeded, T},
		{"context canceled", context.Canceled, T},

		{"pg 40001 serialization_failure", pgErr("40001"), T},
		{"pg 40P01 deadlock", pgErr("40P01"), T},
		{"pg 40003 statement_completion_unknown", pgErr("40003"), T},
		{"pg 40002 deferred constraint", pgErr("40002"), P},
		{"pg 55P03 lock_not_available", pgErr("55P03"), T},
		{"pg 57014 query_canceled", pgErr("57014"), T},
		{"pg 08000 connection_exception", pgErr("08000"), T},
		{"pg 08006 connection_failure", pgErr("08006"), T},
		{"pg 08P01 protocol_violation", pgErr("08P01"), T},
		{"pg 53000 insufficient_resources", pgErr("53000"), T},
		{"pg 53300 too_many_connections", pgErr("53300"), T},
		{"pg 53100 disk_full", pgErr("53100"), T},
		{"pg 57P01 admin_shutdown", pgErr("57P01"), T},
		{"pg 57P02 crash_shutdown", pgErr("57P02"), T},
		{"pg 57P03 cannot_connect_now", pgErr("57P03"), T},
		{"pg 58030 io_error", pgErr("58030"), T},
		{"pg XX000 internal_error", pgErr("XX000"), T},
		{"pg 25P03 idle_in_transaction_timeout", pgErr("25P03"), T},
		{"pg 23505 unique_violation", pgErr("23505"), P},
		{"pg 23503 foreign_key_violation", pgErr("23503"), P},
		{"pg 23502 not_null_violation", pgErr("23502"), P},
		{"pg 23514 check_violation", pgErr("23514"), P},
		{"pg 23P01 exclusion_violation", pgErr("23P01"), P},
		{"pg 22001 string_data_right_truncation", pgErr("22001"), P},
		{"pg 22P02 invalid_text_representation", pgErr("22P02"), P},
		{"pg 22003 numeric_value_out_of_range", pgErr("22003"), P},
		// Schema, permission, authentication and missing-database errors
		// are fixed by a deploy or an operator, not by the event: transient.
		{"pg 42601 syntax_error", pgErr("42601"), T},
		{"pg 42P01 undefined_table", pgErr("42P01"), T},
		{"pg 42703 undefined_column", pgErr("42703"), T},
		{"pg 42883 undefined_function", pgErr("42883"), T},
		{"pg 42501 insufficient_privilege", pgErr("42501"), T},
		{"pg 3F000 invalid_schema_name", pgErr("3F000"), T},
		{"pg 28000 invalid_authorization_specification", pgErr("28000"), T},
		{"pg 28P01 invalid_password", pgErr("28P01"), T},
		{"pg 3D000 invalid_catalog_name", pgErr("3D000"), T},
		{"pg unknown code", pgErr("99999"), T},

		{"http 400", &HTTPStatusError{StatusCode: 400}, P},
		{"http 401", &HTTPStatusError{StatusCode: 401}, P},
		{"http 403", &HTTPStatusError{StatusCode: 403}, P},
		{"http 404", &HTTPStatusError{StatusCode: 404}, P},
		{"http 409", &HTTPStatusError{StatusCode: 409}, P},
		{"http 422", &HTTPStatusError{StatusCode: 422}, P},
		{"http 408", &HTTPStatusError{StatusCode: 408}, T},
		{"http 425", &HTTPStatusError{StatusCode: 425}, T},
		{"http 429", &HTTPStatusError{StatusCode: 429}, T},
		{"http 500", &HTTPStatusError{StatusCode: 500}, T},
		{"http 502", &HTTPStatusError{StatusCode: 502}, T},
		{"http 503", &HTTPStatusError{StatusCode: 503}, T},
		{"http 504", &HTTPStatusError{StatusCode: 504}, T},
		{"googleapi 400", &googleapi.Error{Code: 400}, P},
		{"googleapi 404", &googleapi.Error{Code: 404}, P},
		{"googleapi 409", &googleapi.Error{Code: 409}, P},
		{"googleapi 429", &googleapi.Error{Code: 429}, T},
		{"googleapi 408", &googleapi.Error{Code: 408}, T},
		{"googleapi 500", &googleapi.Error{Code: 500}, T},
		{"googleapi 503", &googleapi.Error{Code: 503}, T},

		{"net.OpError", &net.OpError{Op: "read", Net: "tcp", Err: errors.New("reset")}, T},
		{"net.DNSError", &net.DNSError{Err: "no such host", Name: "x", IsTimeout: true}, T},
		{"unexpected EOF", io.ErrUnexpectedEOF, T},
		{"ECONNRESET", syscall.ECONNRESET, T},
		{"ECONNREFUSED", syscall.ECONNREFUSED, T},
		{"ECONNRESET in SyscallError", os.NewSyscallError("read", syscall.ECONNRESET), T},
		{"deadline exceeded from os", os.ErrDeadlineExceeded, T},

		{"closest rule wins: net error wrapping 404", &net.OpError{Op: "read", Net: "tcp", Err: &HTTPStatusError{StatusCode: 404}}, T},
		{"closest rule wins: joined 404 first", errors.Join(&HTTPStatusError{StatusCode: 404}, io.ErrUnexpectedEOF), P},
		{"closest rule wins: joined EOF first", errors.Join(io.ErrUnexpectedEOF, &HTTPStatusError{StatusCode: 404}), T},
		{"joined unknown then permanent rule", errors.Join(errors.New("x"), pgErr("23505")), P},
		{"mark deep in join beats rule at top", errors.Join(pgErr("40001"), Permanent(errors.New("x"))), P},
	}
	transientGRPC := []codes.Code{codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted,
		codes.Aborted, codes.Internal, codes.Unknown, codes.Canceled, codes.DataLoss}
	permanentGRPC := []codes.Code{codes.InvalidArgument, codes.NotFound, codes.AlreadyExists,
		codes.PermissionDenied, codes.Unauthenticated, codes.FailedPrecondition, codes.OutOfRange, codes.Unimplemented}
	for _, c := range transientGRPC {
		cases = append(cases, classCase{"grpc " + c.String(), status.Error(c, "m"), T})
	}
	for _, c := range permanentGRPC {
		cases = append(cases, classCase{"grpc " + c.String(), status.Error(c, "m"), P})
	}
	cases = append(cases, realNetworkCases(t)...)
	return cases
}

// realNetworkCases produces errors from real failed connections: a TCP dial
// and a pgconn connect to a port nothing listens on.
func realNetworkCases(t *testing.T) []classCase {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	ln.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var d net.Dialer
	_, dialErr := d.DialContext(ctx, "tcp", addr.String())
	if dialErr == nil {
		t.Fatal("dial to a closed port succeeded")
	}
	_, pgErr := pgconn.Connect(ctx, fmt.Sprintf("postgres://u:p@127.0.0.1:%d/db?sslmode=disable&connect_timeout=5", addr.Port))
	var ce *pgconn.ConnectError
	if !errors.As(pgErr, &ce) {
		t.Fatalf("pgconn.Connect error %T %v is not a *pgconn.ConnectError", pgErr, pgErr)
	}
	return []classCase{
		{"real dial refused", dialErr, ClassTransient},
		{"real pgconn connect error", pgErr, ClassTransient},
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range classCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			wraps := map[string]error{
				"bare":           tc.err,
				"wrapped":        fmt.Errorf("charge payment: %w", tc.err),
				"wrapped twice":  fmt.Errorf("handle: %w", fmt.Errorf("charge payment: %w", tc.err)),
				"joined":         errors.Join(errors.New("unrelated"), tc.err),
				"multi %w":       fmt.Errorf("a: %w, b: %w", errors.New("unrelated"), tc.err),
				"AttemptsError":  &AttemptsError{Attempts: 2, Err: tc.err},
				"wrapped in Err": &AttemptsError{Attempts: 2, Err: fmt.Errorf("x: %w", tc.err)},
			}
			for how, err := range wraps {
				if got := Classify(err); got != tc.want {
					t.Errorf("%s: Classify(%v) = %v, want %v", how, err, got, tc.want)
				}
				if got := IsPermanent(err); got != (tc.want == ClassPermanent) {
					t.Errorf("%s: IsPermanent = %v", how, got)
				}
				if got := IsTransient(err); got != (tc.want == ClassTransient) {
					t.Errorf("%s: IsTransient = %v", how, got)
				}
				if !errors.Is(err, tc.err) {
					t.Errorf("%s: errors.Is lost the original error", how)
				}
			}
		})
	}
}

func TestClassifyNil(t *testing.T) {
	if IsTransient(nil) || IsPermanent(nil) {
		t.Fatal("nil must be neither transient nor permanent")
	}
	if Permanent(nil) != nil || Transient(nil) != nil {
		t.Fatal("marking nil must give nil")
	}
}

func TestClassErrorSentinels(t *testing.T) {
	p := fmt.Errorf("x: %w", Permanent(errors.New("bad")))
	if !errors.Is(p, ErrPermanent) || errors.Is(p, ErrTransient) {
		t.Fatal("permanent mark must match ErrPermanent only")
	}
	tr := fmt.Errorf("x: %w", Transient(errors.New("busy")))
	if !errors.Is(tr, ErrTransient) || errors.Is(tr, ErrPermanent) {
		t.Fatal("transient mark must match ErrTransient only")
	}
	var ce *ClassError
	if !errors.As(p, &ce) || ce.Class != ClassPermanent || ce.Class.String() != "permanent" {
		t.Fatalf("errors.As ClassError = %+v", ce)
	}
}

func TestNewHTTPStatusError(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	long := make([]byte, MaxErrorBody+100)
	for i := range long {
		long[i] = 'a'
	}
	tests := []struct {
		name       string
		status     int
		header     http.Header
		body       string
		wantRA     time.Duration
		wantBody   int
		wantClass  Class
		wantSubstr string
	}{
		{"429 seconds", 429, http.Header{"Retry-After": {"7"}}, "slow down", 7 * time.Second, 9, ClassTransient, "429 Too Many Requests: slow down"},
		{"503 http date", 503, http.Header{"Retry-After": {now.Add(90 * time.Second).Format(http.TimeFormat)}, "Date": {now.Format(http.TimeFormat)}}, "", 90 * time.Second, 0, ClassTransient, "503"},
		{"503 date in the past", 503, http.Header{"Retry-After": {now.Add(-time.Minute).Format(http.TimeFormat)}, "Date": {now.Format(http.TimeFormat)}}, "", 0, 0, ClassTransient, "503"},
		{"400 bounded body", 400, http.Header{"Retry-After": {"soon"}}, string(long), 0, MaxErrorBody, ClassPermanent, "400 Bad Request: aaa"},
		{"404 negative retry-after", 404, http.Header{"Retry-After": {"-3"}}, "no", 0, 2, ClassPermanent, "404"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: tc.status, Header: tc.header, Body: io.NopCloser(strings.NewReader(tc.body))}
			e := NewHTTPStatusError(resp)
			if e.RetryAfter != tc.wantRA {
				t.Errorf("RetryAfter = %v, want %v", e.RetryAfter, tc.wantRA)
			}
			if len(e.Body) != tc.wantBody {
				t.Errorf("len(Body) = %d, want %d", len(e.Body), tc.wantBody)
			}
			if Classify(e) != tc.wantClass {
				t.Errorf("class = %v, want %v", Classify(e), tc.wantClass)
			}
			if msg := e.Error(); !strings.Contains(msg, tc.wantSubstr) || len(msg) > 700 {
				t.Errorf("Error() = %q, want it to contain %q and stay short", msg, tc.wantSubstr)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{" 120 ", 2 * time.Minute, true},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"tomorrow", 0, false},
		{now.Add(time.Hour).Format(http.TimeFormat), time.Hour, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"99999999999999999999", 0, false},
		{"9999999999999", time.Duration(int64(1<<63-1) / int64(time.Second) * int64(time.Second)), true},
	}
	for _, tc := range tests {
		got, ok := ParseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
