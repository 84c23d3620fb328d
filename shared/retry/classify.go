package retry

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"google.golang.org/api/googleapi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"example.com/platform/shared/postgres"
)

// Classify returns the class of err. An explicit mark (Permanent, Transient)
// closest to the top of the chain wins; otherwise known error types are
// classified by the rules in this file; anything unknown is transient, so
// it is retried and, if it keeps failing, dead-lettered by Pub/Sub after
// the subscription's maximum delivery attempts rather than lost.
//
// The rules are listed in the package documentation. Classify(nil) is
// ClassTransient; use IsTransient / IsPermanent, which are false for nil.
func Classify(err error) Class {
	var ce *ClassError
	if errors.As(err, &ce) {
		return ce.Class
	}
	if c, ok := walk(err, classifyOne); ok {
		return c
	}
	return ClassTransient
}

// walk visits err and its chain depth first in the order errors.As uses and
// returns the first verdict of f.
func walk(err error, f func(error) (Class, bool)) (Class, bool) {
	for err != nil {
		if c, ok := f(err); ok {
			return c, true
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if c, ok := walk(e, f); ok {
					return c, true
				}
			}
			return 0, false
		default:
			return 0, false
		}
	}
	return 0, false
}

// classifyOne classifies err itself, without looking at what it wraps.
func classifyOne(err error) (Class, bool) {
	if err == context.DeadlineExceeded || err == context.Canceled {
		return ClassTransient, true
	}
	switch e := err.(type) {
	case *pgconn.PgError:
		return classifySQLState(e.Code), true
	case *pgconn.ConnectError:
		return ClassTransient, true
	case *HTTPStatusError:
		return classifyHTTPStatus(e.StatusCode), true
	case *googleapi.Error:
		return classifyHTTPStatus(e.Code), true
	case syscall.Errno:
		switch e {
		case syscall.ECONNRESET, syscall.ECONNREFUSED, syscall.ECONNABORTED, syscall.EPIPE, syscall.ETIMEDOUT:
			return ClassTransient, true
		}
		return 0, false
	}
	if gs, ok := err.(interface{ GRPCStatus() *status.Status }); ok {
		if s := gs.GRPCStatus(); s != nil && s.Code() != codes.OK {
			return classifyGRPCCode(s.Code()), true
		}
	}
	if _, ok := err.(net.Error); ok {
		return ClassTransient, true
	}
	if err == io.ErrUnexpectedEOF {
		return ClassTransient, true
	}
	return 0, false
}

// classifySQLState classifies a PostgreSQL SQLSTATE by who can fix the
// failure: bad data in the event (class 22 data exception, class 23
// integrity constraint violation, 40002) is permanent, because every
// redelivery fails the same way. A missing table, column or function, a
// revoked grant, a rejected login or a missing database (class 42, 3F000,
// class 28, 3D000) is transient: a deploy or an operator fixes it, and
// the events must wait for that instead of being dead-lettered
// (SQLStateErrorClass names these for alerting). Unknown codes are
// transient.
func classifySQLState(code string) Class {
	switch code {
	case "40002": // transaction_integrity_constraint_violation (deferred constraint)
		return ClassPermanent
	case "55P03", // lock_not_available
		"57014", // query_canceled (statement_timeout, cancel request)
		"25P03": // idle_in_transaction_session_timeout
		return ClassTransient
	}
	switch {
	case strings.HasPrefix(code, "23"), // integrity constraint violation
		strings.HasPrefix(code, "22"): // data exception
		return ClassPermanent
	}
	// Class 42 syntax error or access rule violation and 3F000 (schema),
	// class 28 invalid authorization, 3D000 invalid catalog name (missing
	// database), 40xxx transaction rollback (40001 serialization_failure,
	// 40P01 deadlock_detected), 08xxx connection exception, 53xxx
	// insufficient resources, 57P0x shutdown, 58xxx system error, XXxxx
	// internal error and every code not listed above.
	return ClassTransient
}

// Values of the error_class log field (ErrorClass): who must act on an
// error.
const (
	// ErrorClassData: the event's data is bad (SQLSTATE class 22, class
	// 23, 40002). Permanent: dead-lettered.
	ErrorClassData = "data"
	// ErrorClassSchema: the SQL does not match the schema (SQLSTATE class
	// 42 but 42501, 3F000): a rolling deploy or a missing migration.
	// Transient; alert.
	ErrorClassSchema = "schema"
	// ErrorClassPermission: a grant is missing (42501
	// insufficient_privilege). Transient; alert.
	ErrorClassPermission = "permission"
	// ErrorClassAuth: the database rejected the login (SQLSTATE class 28:
	// unknown role, wrong password, no pg_hba entry). Transient; alert.
	ErrorClassAuth = "auth"
	// ErrorClassDatabase: the database does not exist (3D000). Transient;
	// alert.
	ErrorClassDatabase = "database"
)

// ErrorClassKey is the name of the structured log field that carries
// ErrorClass, for log-based metrics and alerts.
const ErrorClassKey = "error_class"

// ErrorClass names who must act on err: one of the ErrorClass* values for
// a PostgreSQL error anywhere in err's chain (including one wrapped in a
// *pgconn.ConnectError), or "" when err is nil or not a database error of
// those classes. It does not change err's Class: schema, permission,
// auth and database errors are transient, data errors permanent.
func ErrorClass(err error) string {
	if errors.Is(err, postgres.ErrNotMigrated) {
		return ErrorClassSchema
	}
	var pg *pgconn.PgError
	if !errors.As(err, &pg) {
		return ""
	}
	return SQLStateErrorClass(pg.Code)
}

// SQLStateErrorClass is ErrorClass of a PostgreSQL SQLSTATE.
func SQLStateErrorClass(code string) string {
	switch {
	case code == "42501":
		return ErrorClassPermission
	case strings.HasPrefix(code, "42"), code == "3F000":
		return ErrorClassSchema
	case strings.HasPrefix(code, "28"):
		return ErrorClassAuth
	case code == "3D000":
		return ErrorClassDatabase
	case strings.HasPrefix(code, "22"), strings.HasPrefix(code, "23"), code == "40002":
		return ErrorClassData
	}
	return ""
}

// LogAttrs returns the log attributes that classify err for alerting:
// ErrorClassKey and ErrorClass(err) when that is not empty, else none.
// Loggers append them to the line that reports err:
//
//	logger.WarnContext(ctx, "transient failure", append([]any{"error", err.Error()}, retry.LogAttrs(err)...)...)
func LogAttrs(err error) []any {
	if c := ErrorClass(err); c != "" {
		return []any{slog.String(ErrorClassKey, c)}
	}
	return nil
}

// classifyHTTPStatus classifies an HTTP response status code: 408, 425, 429
// and anything outside 4xx are transient, other 4xx permanent.
func classifyHTTPStatus(code int) Class {
	switch code {
	case 408, 425, 429: // request timeout, too early, too many requests
		return ClassTransient
	}
	if code >= 400 && code < 500 {
		return ClassPermanent
	}
	return ClassTransient
}

// classifyGRPCCode classifies a gRPC status code. Codes not named are
// transient.
func classifyGRPCCode(c codes.Code) Class {
	switch c {
	case codes.InvalidArgument, codes.NotFound, codes.AlreadyExists, codes.PermissionDenied,
		codes.Unauthenticated, codes.FailedPrecondition, codes.OutOfRange, codes.Unimplemented:
		return ClassPermanent
	}
	// Unavailable, DeadlineExceeded, ResourceExhausted, Aborted, Internal,
	// Unknown, Canceled, DataLoss.
	return ClassTransient
}
