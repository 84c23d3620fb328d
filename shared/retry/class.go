package retry

import (
	"errors"
	"fmt"
)

// Class says what to do with an error.
type Class int

const (
	// ClassTransient errors may succeed on a later attempt: retry in process,
	// then let Pub/Sub redeliver.
	ClassTransient Class = iota
	// ClassPermanent errors will fail the same way every time: dead-letter
	// at once and acknowledge.
	ClassPermanent
)

func (c Class) String() string {
	if c == ClassPermanent {
		return "permanent"
	}
	return "transient"
}

// Sentinels matched by errors.Is on classified errors.
var (
	ErrPermanent = errors.New("permanent")
	ErrTransient = errors.New("transient")
)

// ClassError attaches a Class to an error. Use errors.As to read it, or
// errors.Is with ErrPermanent / ErrTransient.
type ClassError struct {
	Class Class
	Err   error
}

func (e *ClassError) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *ClassError) Unwrap() error { return e.Err }

// Is reports whether target is the sentinel of e's class.
func (e *ClassError) Is(target error) bool {
	return (target == ErrPermanent && e.Class == ClassPermanent) ||
		(target == ErrTransient && e.Class == ClassTransient)
}

// Permanent marks err as permanent. It returns nil for a nil err.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &ClassError{Class: ClassPermanent, Err: err}
}

// Permanentf is fmt.Errorf marked permanent.
func Permanentf(format string, args ...any) error { return Permanent(fmt.Errorf(format, args...)) }

// Transient marks err as transient. It returns nil for a nil err.
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return &ClassError{Class: ClassTransient, Err: err}
}

// Transientf is fmt.Errorf marked transient.
func Transientf(format string, args ...any) error { return Transient(fmt.Errorf(format, args...)) }

// IsPermanent reports whether err classifies as permanent.
func IsPermanent(err error) bool { return err != nil && Classify(err) == ClassPermanent }

// IsTransient reports whether err classifies as transient.
func IsTransient(err error) bool { return err != nil && Classify(err) == ClassTransient }
