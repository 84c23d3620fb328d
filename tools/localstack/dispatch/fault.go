package dispatch

import (
	"errors"
	"sync"
)

// PoisonBody is the body a push gets when Config.Fault asks for Poison: not
// JSON, so every consumer fails to decode it, a permanent error.
var PoisonBody = []byte("\x00poison: not a CloudEvent payload\x00")

// ErrInjected is the error of a delivery attempt that Config.Fault failed.
var ErrInjected = errors.New("dispatch: injected transient failure (answered as HTTP 503 without pushing)")

// Push describes one delivery attempt, for Config.Fault.
type Push struct {
	Subscription string // subscription id
	Topic        string
	Consumer     string
	MessageID    string
	OrderingKey  string
	// Attributes of the message (read only).
	Attributes map[string]string
	// Attempt is the 1-based delivery attempt.
	Attempt int
}

// Fault is what Config.Fault asks the dispatcher to do with one delivery
// attempt. The zero value delivers normally.
type Fault struct {
	// Fail answers the attempt as if the consumer had returned 503, without
	// pushing: the message is redelivered after its backoff (and counts
	// towards max_delivery_attempts).
	Fail bool
	// Poison replaces the body by PoisonBody for this attempt (the
	// attributes, so the CloudEvent id, stay). A hook that poisons a
	// message should poison each of its attempts.
	Poison bool
	// Duplicate pushes the attempt twice, as when Pub/Sub loses an ack or
	// hands a message to two instances: after the first push succeeded,
	// or, with Concurrent, both at the same time (the message is
	// acknowledged when either succeeds).
	Duplicate  bool
	Concurrent bool
}

// pushConcurrently calls push twice at the same time and returns the
// result of a successful push first if either succeeded, then the other's.
func pushConcurrently(push func() (int, error)) (int, error, int, error) {
	var wg sync.WaitGroup
	var st [2]int
	var errs [2]error
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st[i], errs[i] = push()
		}()
	}
	wg.Wait()
	if errs[0] != nil || !Success(st[0]) {
		if errs[1] == nil && Success(st[1]) {
			return st[1], nil, st[0], errs[0]
		}
	}
	return st[0], errs[0], st[1], errs[1]
}
