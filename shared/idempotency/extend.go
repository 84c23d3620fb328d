package idempotency

import (
	"context"
	"fmt"
	"time"
)

// Extend implements LeaseStore with the server's clock.
func (s *Store) Extend(ctx context.Context, c Claim, lease time.Duration) error {
	if c.State != ClaimAcquired || c.Token == "" {
		return leaseLost("extend", c.Key)
	}
	if lease <= 0 {
		return invalidLease(lease)
	}
	tag, err := s.pool.Exec(ctx, `
UPDATE processed_events SET lease_expires_at = now() + $4 * interval '1 microsecond'
 WHERE consumer = $1 AND event_key = $2 AND lease_token = $3 AND status = 'in_progress'`,
		c.Key.Consumer, c.Key.ID, c.Token, lease.Microseconds())
	if err != nil {
		return fmt.Errorf("idempotency: extend %s: %w", c.Key, err)
	}
	if tag.RowsAffected() == 0 {
		return leaseLost("extend", c.Key)
	}
	return nil
}

// Extend implements LeaseStore.
func (m *MemoryStore) Extend(ctx context.Context, c Claim, lease time.Duration) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("idempotency: extend %s: %w", c.Key, err)
	}
	if lease <= 0 {
		return invalidLease(lease)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.owned(c)
	if !ok {
		return leaseLost("extend", c.Key)
	}
	r.LeaseExpiresAt = m.cfg.Now().Add(lease)
	return nil
}
