package idempotency

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"
)

// MemoryStore is an in-process LeaseStore for unit tests of callers. It
// keeps the semantics of the PostgreSQL store (same conformance suite) but
// nothing survives the process, so it is no use in production.
// Transactional mode needs PostgreSQL and has no in-memory counterpart.
// It is safe for concurrent use.
type MemoryStore struct {
	cfg     Config
	mu      sync.Mutex
	records map[Key]*memRecord
}

type memRecord struct {
	Record
	token string
}

// NewMemoryStore returns an empty store; cfg.Now is its clock.
func NewMemoryStore(cfg Config) (*MemoryStore, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	return &MemoryStore{cfg: cfg, records: make(map[Key]*memRecord)}, nil
}

// Claim implements LeaseStore.
func (m *MemoryStore) Claim(ctx context.Context, key Key, payloadHash []byte, lease time.Duration) (Claim, error) {
	if err := key.Validate(); err != nil {
		return Claim{}, err
	}
	if lease <= 0 {
		return Claim{}, invalidLease(lease)
	}
	if err := ctx.Err(); err != nil {
		return Claim{}, fmt.Errorf("idempotency: claim %s: %w", key, err)
	}
	if len(payloadHash) == 0 {
		payloadHash = nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.cfg.Now()
	r, ok := m.records[key]
	if !ok {
		r = &memRecord{Record: Record{Key: key, Status: StatusInProgress, PayloadHash: bytes.Clone(payloadHash), CreatedAt: now}}
		m.records[key] = r
	} else {
		if hashesDiffer(r.PayloadHash, payloadHash) {
			return Claim{}, mismatch(key)
		}
		if r.Status == StatusDone {
			return Claim{Key: key, State: ClaimDone, Attempt: r.Attempts, Result: bytes.Clone(r.Result)}, nil
		}
		if now.Before(r.LeaseExpiresAt) {
			return Claim{}, inProgress(key, r.LeaseExpiresAt)
		}
	}
	r.Attempts++
	r.token = newToken()
	r.LeaseExpiresAt = now.Add(lease)
	return Claim{Key: key, State: ClaimAcquired, Token: r.token, Attempt: r.Attempts, LeaseExpiresAt: r.LeaseExpiresAt}, nil
}

// owned returns the record that c still owns, with m.mu held.
func (m *MemoryStore) owned(c Claim) (*memRecord, bool) {
	r, ok := m.records[c.Key]
	if !ok || c.State != ClaimAcquired || c.Token == "" || r.Status != StatusInProgress || r.token != c.Token {
		return nil, false
	}
	return r, true
}

// Complete implements LeaseStore.
func (m *MemoryStore) Complete(ctx context.Context, c Claim, result []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("idempotency: complete %s: %w", c.Key, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.owned(c)
	if !ok {
		return leaseLost("complete", c.Key)
	}
	if result == nil {
		result = []byte{}
	}
	r.Status, r.Result, r.CompletedAt = StatusDone, bytes.Clone(result), m.cfg.Now()
	r.token, r.LeaseExpiresAt = "", time.Time{}
	return nil
}

// Release implements LeaseStore.
func (m *MemoryStore) Release(ctx context.Context, c Claim) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("idempotency: release %s: %w", c.Key, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.owned(c); !ok {
		return leaseLost("release", c.Key)
	}
	delete(m.records, c.Key)
	return nil
}

// Inspect implements LeaseStore.
func (m *MemoryStore) Inspect(ctx context.Context, key Key) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, fmt.Errorf("idempotency: inspect %s: %w", key, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.records[key]
	if !ok {
		return Record{}, fmt.Errorf("idempotency: inspect %s: %w", key, ErrNotFound)
	}
	rec := r.Record
	rec.PayloadHash, rec.Result = bytes.Clone(r.PayloadHash), bytes.Clone(r.Result)
	return rec, nil
}

// Purge implements LeaseStore.
func (m *MemoryStore) Purge(ctx context.Context, olderThan time.Time) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("idempotency: purge: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	for k, r := range m.records {
		if r.Status == StatusDone && r.CompletedAt.Before(olderThan) ||
			r.Status == StatusInProgress && r.LeaseExpiresAt.Before(olderThan) {
			delete(m.records, k)
			n++
		}
	}
	return n, nil
}

// PurgeExpired purges the records older than Config.Retention.
func (m *MemoryStore) PurgeExpired(ctx context.Context) (int64, error) {
	return m.Purge(ctx, m.cfg.Now().Add(-m.cfg.Retention))
}
