// Package dlq reads the dead-letter archive: the rows the dead-letter
// function writes, one per dead-lettered message, into the BigQuery table
// dead_letters (columns: functions/deadletter/schema/dead_letters.json), or,
// on the local stack without a BigQuery emulator, into a JSON-lines file
// with the same columns.
//
// Two implementations of Archive read them: BigQuery (the real client,
// jobs.query) and JSONL. Both decode rows with dlarchive.DecodeRow, filter with
// Filter.Match semantics and return entries ordered by dead-letter time,
// one per message id (the archive is written at least once, so a message
// may have been archived twice; the first received copy wins).
package dlq

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

	dlarchive "example.com/platform/shared/deadletter/archive"
)

// ErrNotFound is returned by Archive.Get for an unknown message id.
var ErrNotFound = errors.New("no such dead letter")

// Entry is one archived dead letter: a row of the archive in the format
// package deadletter owns (dlarchive.Record, decoded by
// dlarchive.DecodeRow).
type Entry = dlarchive.Record

// Filter selects dead letters. The zero Filter selects everything.
type Filter struct {
	// Subscription matches SourceSubscription (an id or a full name).
	Subscription string
	// Type matches the CloudEvent type exactly.
	Type string
	// Since and Until bound DeadLetteredAt: Since <= t < Until. Zero
	// values leave that side open.
	Since, Until time.Time
	// Limit is the most entries returned (the oldest first); 0 means all.
	Limit int
}

// Match reports whether e passes every condition of f but Limit.
func (f Filter) Match(e Entry) bool {
	if f.Subscription != "" && e.SourceSubscription() != dlarchive.ResourceID(f.Subscription) {
		return false
	}
	if f.Type != "" && e.Type() != f.Type {
		return false
	}
	if !f.Since.IsZero() && e.DeadLetteredAt.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && !e.DeadLetteredAt.Before(f.Until) {
		return false
	}
	return true
}

// Archive is a source of archived dead letters. Implementations are safe
// for concurrent use and read only: nothing here deletes or changes a row.
type Archive interface {
	// List returns the entries matching f (Filter.Match), one per message
	// id, ordered by DeadLetteredAt then MessageID, at most f.Limit.
	List(ctx context.Context, f Filter) ([]Entry, error)
	// Get returns the entry with message id id, or an error wrapping
	// ErrNotFound.
	Get(ctx context.Context, id string) (Entry, error)
	// String names the archive and where it lives, for messages.
	String() string
}

// sortDedupLimit orders entries, keeps the first received copy of each
// message id and applies limit.
func sortDedupLimit(entries []Entry, limit int) []Entry {
	slices.SortStableFunc(entries, func(a, b Entry) int {
		if c := a.DeadLetteredAt.Compare(b.DeadLetteredAt); c != 0 {
			return c
		}
		if c := strings.Compare(a.MessageID, b.MessageID); c != 0 {
			return c
		}
		return a.ReceivedAt.Compare(b.ReceivedAt)
	})
	seen := map[string]bool{}
	out := entries[:0]
	for _, e := range entries {
		if seen[e.MessageID] {
			continue
		}
		seen[e.MessageID] = true
		out = append(out, e)
		if limit > 0 && len(out) == limit {
			break
		}
	}
	return out
}

// Group counts the dead letters of one subscription and reason.
type Group struct {
	Subscription  string
	ReasonClass   string
	ReasonMessage string
	Count         int
	First, Last   time.Time
}

// Groups counts entries by subscription, reason class and reason message,
// the largest group first.
func Groups(entries []Entry) []Group {
	type key struct{ sub, class, msg string }
	m := map[key]*Group{}
	for _, e := range entries {
		class, msg := e.Reason()
		k := key{e.SourceSubscription(), class, msg}
		g := m[k]
		if g == nil {
			g = &Group{Subscription: k.sub, ReasonClass: class, ReasonMessage: msg, First: e.DeadLetteredAt, Last: e.DeadLetteredAt}
			m[k] = g
		}
		g.Count++
		if e.DeadLetteredAt.Before(g.First) {
			g.First = e.DeadLetteredAt
		}
		if e.DeadLetteredAt.After(g.Last) {
			g.Last = e.DeadLetteredAt
		}
	}
	out := make([]Group, 0, len(m))
	for _, k := range slices.SortedFunc(maps.Keys(m), func(a, b key) int {
		return strings.Compare(a.sub+"\x00"+a.class+"\x00"+a.msg, b.sub+"\x00"+b.class+"\x00"+b.msg)
	}) {
		out = append(out, *m[k])
	}
	slices.SortStableFunc(out, func(a, b Group) int { return b.Count - a.Count })
	return out
}
