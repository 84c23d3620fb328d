package retry

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"google.golang.org/api/googleapi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
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

// classifySQLState classifies a PostgreSQL SQLSTATE. Unknown codes are
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
		strings.HasPrefix(code, "22"), // data exception
		strings.HasPrefix(code, "42"): // syntax error or access rule violation
		return ClassPermanent
	}
	// 40xxx transaction rollback (40001 serialization_failure, 40P01
	// deadlock_detected), 08xxx connection exception, 53xxx insufficient
	// resources, 57P0x shutdown, 58xxx system error, XXxxx internal error and
	// every code not listed above.
	return ClassTransient
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
