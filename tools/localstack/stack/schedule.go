package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// RunSchedules calls every schedule of the running HTTP services once, as
// Cloud Scheduler would (a POST to the manifest's path; the local stack
// needs no OIDC token), and returns the first failure. The outbox relay
// (functions/relay) is the one the reference manifests declare.
func (s *Stack) RunSchedules(ctx context.Context) error {
	var errs []error
	for _, m := range s.Repo.Functions {
		if len(m.Schedules) == 0 || !s.Running(m.Name) {
			continue
		}
		for _, sc := range m.Schedules {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL(m.Name)+sc.Path, nil)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs = append(errs, fmt.Errorf("schedule %s of %s: %w", sc.Name, m.Name, err))
				continue
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode/100 != 2 {
				errs = append(errs, fmt.Errorf("schedule %s of %s: %s", sc.Name, m.Name, resp.Status))
			}
		}
	}
	return errors.Join(errs...)
}

// runSchedules calls RunSchedules every interval until ctx ends, logging
// failures (Cloud Scheduler retries on its next tick too).
func (s *Stack) runSchedules(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.RunSchedules(ctx); err != nil && ctx.Err() == nil {
			s.logf("scheduled call failed: %v", err)
		}
	}
}
