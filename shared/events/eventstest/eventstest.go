// Package eventstest registers two small event types for the kernel's own
// tests, so that the kernel packages (events, handler, idempotency, ...) are
// tested without any domain package: a fork that deletes the reference
// domain keeps every kernel test.
//
// Importing the package registers:
//
//	TypeCreated  com.example.test.thing.created.v1  topic thing.created  payload Created
//	TypeDone     com.example.test.thing.done.v1     topic thing.done     payload Done
package eventstest

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"example.com/platform/shared/events"
)

// Event types and topics registered by the package.
const (
	TypeCreated  = "com.example.test.thing.created.v1"
	TypeDone     = "com.example.test.thing.done.v1"
	TopicCreated = "thing.created"
	TopicDone    = "thing.done"
)

func init() {
	events.Register[Created](TypeCreated, TopicCreated)
	events.Register[Done](TypeDone, TopicDone)
}

// Created says a thing was created. Its aggregate is the thing (ThingID).
// Parts is optional: it gives tests a nested shape (a list of structs).
type Created struct {
	ThingID string    `json:"thing_id"`
	Name    string    `json:"name"`
	Count   int64     `json:"count"`
	Parts   []Part    `json:"parts,omitempty"`
	At      time.Time `json:"at"`
}

// Part is one part of a Created thing.
type Part struct {
	Name     string `json:"name"`
	Quantity int64  `json:"quantity"`
}

// EventType implements events.Payload.
func (Created) EventType() string { return TypeCreated }

// AggregateID implements events.Payload.
func (c Created) AggregateID() string { return c.ThingID }

// OccurredAt implements events.Payload.
func (c Created) OccurredAt() time.Time { return c.At }

// Validate requires a canonical UUID thing id, a non-blank name of at most
// 64 bytes of UTF-8, a count in 0..1000, parts with a non-blank name and a quantity
// in 1..100, and a time.
func (c Created) Validate() error {
	var problems []string
	problems = checkID(problems, c.ThingID)
	switch {
	case strings.TrimSpace(c.Name) == "":
		problems = append(problems, "name: is required")
	case len(c.Name) > 64:
		problems = append(problems, "name: must be at most 64 bytes")
	case !utf8.ValidString(c.Name):
		problems = append(problems, "name: must be valid UTF-8")
	}
	if c.Count < 0 || c.Count > 1000 {
		problems = append(problems, "count: must be between 0 and 1000")
	}
	for i, p := range c.Parts {
		if strings.TrimSpace(p.Name) == "" {
			problems = append(problems, fmt.Sprintf("parts[%d].name: is required", i))
		} else if !utf8.ValidString(p.Name) {
			problems = append(problems, fmt.Sprintf("parts[%d].name: must be valid UTF-8", i))
		}
		if p.Quantity < 1 || p.Quantity > 100 {
			problems = append(problems, fmt.Sprintf("parts[%d].quantity: must be between 1 and 100, got %d", i, p.Quantity))
		}
	}
	if c.At.IsZero() {
		problems = append(problems, "at: is required")
	}
	return result("Created", problems)
}

// Done says a thing is done.
type Done struct {
	ThingID string    `json:"thing_id"`
	At      time.Time `json:"at"`
}

// EventType implements events.Payload.
func (Done) EventType() string { return TypeDone }

// AggregateID implements events.Payload.
func (d Done) AggregateID() string { return d.ThingID }

// OccurredAt implements events.Payload.
func (d Done) OccurredAt() time.Time { return d.At }

// Validate requires a canonical UUID thing id and a time.
func (d Done) Validate() error {
	problems := checkID(nil, d.ThingID)
	if d.At.IsZero() {
		problems = append(problems, "at: is required")
	}
	return result("Done", problems)
}

func checkID(problems []string, id string) []string {
	if u, err := uuid.Parse(id); err != nil || len(id) != 36 || u == uuid.Nil {
		return append(problems, "thing_id: must be a non-nil UUID in canonical form")
	}
	return problems
}

func result(payload string, problems []string) error {
	if len(problems) == 0 {
		return nil
	}
	return &events.ValidationError{Payload: payload, Problems: problems}
}

// T0 is a fixed time for test payloads.
var T0 = time.Date(2026, 5, 1, 12, 30, 45, 123456789, time.UTC)

// NewCreated returns a valid Created for a new random thing.
func NewCreated() Created {
	return Created{ThingID: uuid.NewString(), Name: "widget", Count: 3, At: T0}
}
