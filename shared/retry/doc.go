// Package retry classifies errors as permanent or transient and retries
// transient failures with exponential backoff and full jitter inside a time
// budget that never outlives the caller's deadline.
//
// # Classes
//
// A permanent error fails the same way on every attempt: the handler
// dead-letters the event at once and acknowledges it. A transient error may
// succeed later: it is retried in process by [Do], then returned so that
// Pub/Sub redelivers. Mark an error with [Permanent] or [Transient]; test it
// with [IsPermanent], [IsTransient], errors.Is(err, [ErrPermanent]) or
// errors.As into [*ClassError].
//
// # Classification
//
// [Classify] decides in this order:
//
//  1. An explicit mark ([Permanent], [Transient]) anywhere in the chain wins;
//     the mark closest to the top of the chain (the first one errors.As
//     finds) decides.
//  2. Otherwise the chain is walked from the top (depth first, the order
//     errors.As uses) and the first error that a rule below recognises
//     decides.
//  3. Anything else is transient: it is retried and, if it keeps failing,
//     dead-lettered by Pub/Sub after the subscription's maximum delivery
//     attempts instead of being lost.
//
// The rules:
//
//	error                                   transient                                 permanent
//	--------------------------------------  ----------------------------------------  -------------------------------------------
//	context.DeadlineExceeded, Canceled      always
//	*pgconn.PgError (SQLSTATE)              40001 serialization_failure,              class 23 integrity constraint violation
//	                                        40P01 deadlock_detected, other class 40   (23505 unique, 23503 foreign key,
//	                                        but 40002; 55P03 lock_not_available;      23502 not null, 23514 check, ...);
//	                                        57014 query_canceled; 57P0x shutdown;     40002 deferred constraint violation;
//	                                        class 08 connection; class 53             class 22 data exception (22P02
//	                                        insufficient resources; class 58 system;  invalid text representation, ...)
//	                                        XX internal; 25P03 idle-in-tx timeout;
//	                                        class 42 (undefined table, column,
//	                                        function, 42501 insufficient
//	                                        privilege, syntax); 3F000 schema;
//	                                        class 28 authentication; 3D000
//	                                        missing database; any other code
//	*pgconn.ConnectError                    always
//	*HTTPStatusError, *googleapi.Error      408, 425, 429, 5xx, any non-4xx           other 4xx
//	gRPC status (GRPCStatus() method)       Unavailable, DeadlineExceeded,            InvalidArgument, NotFound, AlreadyExists,
//	                                        ResourceExhausted, Aborted, Internal,     PermissionDenied, Unauthenticated,
//	                                        Unknown, any other code                   FailedPrecondition, OutOfRange,
//	                                                                                  Unimplemented
//	net.Error (*net.OpError, *url.Error)    always
//	io.ErrUnexpectedEOF                     always
//	syscall ECONNRESET, ECONNREFUSED,       always
//	ECONNABORTED, EPIPE, ETIMEDOUT
//	anything else                           always
//
// PostgreSQL errors are classified by who can fix them: bad data in the
// event is permanent; a missing table, column, grant, credential or
// database is transient, because a deploy or an operator fixes it and the
// events must wait rather than be dead-lettered. Those transient errors
// are meant to alert: [ErrorClass] names them ("schema", "permission",
// "auth", "database"; "data" for the permanent ones) and [LogAttrs] gives
// the error_class log field for a log-based metric (docs/failure-model.md).
//
// # Backoff
//
// [Do] calls a function until it succeeds, fails permanently, or the
// [Policy] runs out. The zero Policy is valid and means:
//
//	MaxAttempts  3        calls of fn in total, the first one included
//	Initial      100ms    upper bound of the first wait
//	Max          5s       upper bound of any computed wait
//	Multiplier   2.0      growth of the upper bound per retry
//	Budget       10s      time from the start of Do past which no wait may
//	                      end (running calls are bounded by ctx only)
//
// Before retry n (n = 1 after the first failure) Do waits a uniformly random
// duration in [0, min(Max, Initial*Multiplier^(n-1))] ("full jitter"). A
// Retry-After carried by the error ([HTTPStatusError.RetryAfter], or the
// Retry-After header of a *googleapi.Error) is a floor for that wait. Do
// never sleeps past the earlier of the context deadline and the budget: when
// the next wait would end after it, Do returns the last error at once.
//
// [Exponential] is the deterministic variant (no jitter, factor 2) used by
// the local push dispatcher to imitate a subscription's retry policy.
package retry
