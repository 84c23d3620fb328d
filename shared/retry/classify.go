package retry

import "errors"

// Classify returns the class of err. An explicit mark (Permanent, Transient)
// closest to the top of the chain wins; otherwise known error types are
// classified by the rules in this file; anything unknown is transient, so
// it is retried and, if it keeps failing, dead-lettered by Pub/Sub after
// the subscription's maximum delivery attempts rather than lost.
func Classify(err error) Class {
	var ce *ClassError
	if errors.As(err, &ce) {
		return ce.Class
	}
	return ClassTransient
}
