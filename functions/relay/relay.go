// Package relay is the platform's outbox relay: a service that Cloud
// Scheduler calls every minute (POST /run, see function.yaml schedules).
// Each run, within its budget:
//
//  1. drains the outbox: publishes every row a publish after commit missed
//     (Pub/Sub was slow or down, the process died after its commit), many
//     in flight at once, each ordering key in order (outbox.Relay.Drain);
//  2. purges outbox rows published more than OUTBOX_RETENTION ago and
//     idempotency records older than IDEMPOTENCY_RETENTION, in batches;
//  3. reports rows stuck longer than the relay's threshold (a structured
//     WARNING per row, the outbox_stuck_rows log metric, eventctl outbox
//     stuck);
//  4. reports the parked ordering keys of every subscription (a structured
//     WARNING per subscription with parked keys, ParkedMessage: the
//     parked_keys and parked_key_age_seconds log metrics, alerting the
//     consumer's team; eventctl parked list).
//
// It answers 200 with what it did, or 503 when the database failed, so
// Cloud Scheduler records the failure. Runs may overlap or run on several
// instances: claims are leased, so no row is published by two relays at
// once. `eventctl outbox flush` drains through the same outbox.Relay.Drain.
package relay

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"example.com/platform/shared/idempotency"
	"example.com/platform/shared/outbox"
	"example.com/platform/shared/parking"
)

// EntryPoint is the function's entry point (function.yaml entry_point).
const EntryPoint = "Relay"

// RunPath is the path of one run (function.yaml schedules).
const RunPath = "/run"

// Service runs the relay's scheduled work. It is safe for concurrent use.
type Service struct {
	Relay       *outbox.Relay
	Idempotency *idempotency.Store
	// Parking, when set, is reported on at each run.
	Parking *parking.Store
	Logger  *slog.Logger
	// Budget bounds one run; keep it below the schedule's attempt
	// deadline and the service's timeout.
	Budget time.Duration
	// OutboxRetention and IdempotencyRetention are how long published
	// rows and processed-event records are kept.
	OutboxRetention      time.Duration
	IdempotencyRetention time.Duration
}

// Report is the answer of one run.
type Report struct {
	Published         int   `json:"published"`
	Failed            int   `json:"failed"`
	PurgedOutbox      int64 `json:"purged_outbox"`
	PurgedIdempotency int64 `json:"purged_idempotency"`
	Stuck             int64 `json:"stuck"`
	// ParkedKeys counts the ordering keys parked behind a dead letter.
	ParkedKeys int `json:"parked_keys"`
	// Complete is false when the budget ran out first: the next run goes on.
	Complete bool `json:"complete"`
}

// Run does one run within Budget (see the package documentation).
func (s *Service) Run(ctx context.Context) (Report, error) {
	ctx, cancel := context.WithTimeout(ctx, s.Budget)
	defer cancel()
	var rep Report
	st, err := s.Relay.Drain(ctx)
	rep.Published, rep.Failed = st.Published, st.Failed
	if err := budgetOK(err); err != nil {
		return rep, err
	}
	if rep.PurgedOutbox, err = s.Relay.PurgePublished(ctx, s.OutboxRetention); budgetOK(err) != nil {
		return rep, err
	}
	if rep.PurgedIdempotency, err = s.Idempotency.Purge(ctx, time.Now().Add(-s.IdempotencyRetention)); budgetOK(err) != nil {
		return rep, err
	}
	topics, err := s.Relay.Status(ctx)
	if budgetOK(err) != nil {
		return rep, err
	}
	for _, t := range topics {
		rep.Stuck += t.Stuck
	}
	if s.Parking != nil {
		parked, err := s.Parking.Stats(ctx)
		if budgetOK(err) != nil {
			return rep, err
		}
		for _, p := range parked {
			rep.ParkedKeys += p.Keys
			s.Logger.WarnContext(ctx, ParkedMessage, "subscription", p.Subscription, "consumer", p.Consumer,
				"parked_keys", p.Keys, "parked_events", p.Events, "oldest_age_seconds", int64(p.OldestAge.Seconds()))
		}
	}
	rep.Complete = ctx.Err() == nil
	return rep, nil
}

// ParkedMessage is the message of the WARNING the relay logs at each run
// for every subscription with parked ordering keys (fields subscription,
// consumer, parked_keys, parked_events, oldest_age_seconds): the log
// metrics parked_keys and parked_key_age_seconds (infra/modules/monitoring)
// are built on it.
const ParkedMessage = "ordering keys parked behind a dead letter"

// budgetOK is nil for err nil or the run's own deadline: what is left waits
// for the next run.
func budgetOK(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return err
}

// ServeHTTP serves POST RunPath.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != RunPath {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "runs are POST requests", http.StatusMethodNotAllowed)
		return
	}
	rep, err := s.Run(r.Context())
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		s.Logger.WarnContext(r.Context(), "relay run failed; the next run goes on", "error", err.Error(), "published", rep.Published)
		w.WriteHeader(http.StatusServiceUnavailable)
	} else {
		s.Logger.InfoContext(r.Context(), "relay run", "published", rep.Published, "failed", rep.Failed,
			"purged_outbox", rep.PurgedOutbox, "purged_idempotency", rep.PurgedIdempotency, "stuck", rep.Stuck,
			"parked_keys", rep.ParkedKeys, "complete", rep.Complete)
	}
	json.NewEncoder(w).Encode(rep)
}
