package idempotency_test

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"example.com/platform/shared/idempotency"
)

// Two different events whose source and id joined by "/" were the same
// string: before, the second was taken for a duplicate of the first and
// never processed (or, with another payload, dead-lettered as a payload
// mismatch). Now each is processed once, against a real PostgreSQL.
func TestKeyForCollidingEventsAreBothProcessed(t *testing.T) {
	_, store := newStore(t)
	ctx := context.Background()
	a := idempotency.KeyFor("payment", "//example.com/orders/eu", "1")
	b := idempotency.KeyFor("payment", "//example.com/orders", "eu/1")
	if a == b {
		t.Fatalf("(//example.com/orders/eu, 1) and (//example.com/orders, eu/1) share key %q", a.ID)
	}
	for _, k := range []idempotency.Key{a, b} {
		ran := false
		out, err := store.Transactional(ctx, k, idempotency.HashPayload([]byte(k.ID)), func(context.Context, pgx.Tx) error {
			ran = true
			return nil
		})
		if err != nil || out != idempotency.OutcomeProcessed || !ran {
			t.Fatalf("key %q: outcome %v, err %v, ran %v; want processed", k.ID, out, err, ran)
		}
	}
	// And each is still deduplicated against itself.
	out, err := store.Transactional(ctx, b, idempotency.HashPayload([]byte(b.ID)), func(context.Context, pgx.Tx) error {
		t.Error("duplicate ran")
		return nil
	})
	if err != nil || out != idempotency.OutcomeDuplicate {
		t.Fatalf("redelivery: outcome %v, err %v", out, err)
	}
}

// Records written before the change keep their key: for an id without
// "/" (every id our producers make) the key is byte for byte the old one.
func TestKeyForKeepsTheOldKeyOfUnambiguousEvents(t *testing.T) {
	for _, c := range [][2]string{
		{"//example.com/orders", "0b6f2d1e-6f7c-4a59-9a35-2f1f3c6a9d10"},
		{"orders-api", "e1"},
		{"", "x"},
		{"//a/b/c/", "id:with:colons"},
		{"ce:abc", "ce:def"},
	} {
		if got, want := idempotency.KeyFor("c", c[0], c[1]).ID, c[0]+"/"+c[1]; got != want {
			t.Errorf("KeyFor(%q, %q) = %q, want the old key %q", c[0], c[1], got, want)
		}
	}
}

// decodeKeyID inverts KeyFor's ID: the test that it is injective.
func decodeKeyID(t testing.TB, id string) (source, eventID string) {
	t.Helper()
	if i := strings.LastIndexByte(id, '/'); i >= 0 {
		return id[:i], id[i+1:]
	}
	rest, ok := strings.CutPrefix(id, "ce:")
	s64, i64, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 {
		t.Fatalf("key id %q is neither form", id)
	}
	s, err1 := base64.RawURLEncoding.DecodeString(s64)
	e, err2 := base64.RawURLEncoding.DecodeString(i64)
	if err1 != nil || err2 != nil {
		t.Fatalf("key id %q: %v %v", id, err1, err2)
	}
	return string(s), string(e)
}

// FuzzKeyFor: the key determines the (source, id) pair, so two different
// events never share a key, and an id without "/" keeps the old key.
func FuzzKeyFor(f *testing.F) {
	for _, c := range [][2]string{
		{"//example.com/orders/eu", "1"}, {"//example.com/orders", "eu/1"}, {"a", "b/c"}, {"a/b", "c"},
		{"", ""}, {"/", "/"}, {"ce:", ":"}, {"//x", "0b6f2d1e-6f7c-4a59-9a35-2f1f3c6a9d10"},
	} {
		f.Add(c[0], c[1])
	}
	f.Fuzz(func(t *testing.T, source, id string) {
		k := idempotency.KeyFor("c", source, id)
		s, e := decodeKeyID(t, k.ID)
		if s != source || e != id {
			t.Fatalf("KeyFor(%q, %q) = %q decodes to (%q, %q)", source, id, k.ID, s, e)
		}
		if !strings.Contains(id, "/") && k.ID != source+"/"+id {
			t.Fatalf("KeyFor(%q, %q) = %q changed an unambiguous key", source, id, k.ID)
		}
	})
}
