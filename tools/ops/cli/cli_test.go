package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"example.com/platform/shared/deadletter"
	dlarchive "example.com/platform/shared/deadletter/archive"
	"example.com/platform/shared/idempotency"
	"example.com/platform/shared/messaging"
	"example.com/platform/shared/outbox"
	"example.com/platform/shared/testing/pgtest"
	"example.com/platform/shared/testing/pubsubtest"
	"example.com/platform/tools/ops/cli"
	"example.com/platform/tools/ops/dlq"
	"example.com/platform/tools/ops/dlq/dlqtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// stack is a database, a pstest server and an archive, wired through the
// environment exactly as an operator's shell would be.
type stack struct {
	pool    *pgxpool.Pool
	ps      *pubsubtest.Fake
	archive string
}

func newStack(t *testing.T, entries ...dlq.Entry) *stack {
	t.Helper()
	url := pgtest.NewDatabase(t)
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	ps := pubsubtest.New(t)
	t.Setenv("DATABASE_URL", url)
	t.Setenv("PUBSUB_EMULATOR_HOST", ps.Server.Addr)
	t.Setenv("GOOGLE_CLOUD_PROJECT", pubsubtest.Project)
	t.Setenv("EVENTCTL_USER", "alice@test")
	for _, k := range []string{"EVENTCTL_ARCHIVE", "BIGQUERY_DATASET", "BIGQUERY_PROJECT", "BIGQUERY_EMULATOR_HOST", "DB_INSTANCE_CONNECTION_NAME"} {
		t.Setenv(k, "")
	}
	s := &stack{pool: pool, ps: ps}
	if entries != nil {
		s.archive = "jsonl:" + dlqtest.WriteJSONL(t, entries...)
		t.Setenv("EVENTCTL_ARCHIVE", s.archive)
	}
	return s
}

type result struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Main(args, &out, &errb)
	r := result{code, out.String(), errb.String()}
	t.Logf("eventctl %s -> %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, r.stdout, r.stderr)
	return r
}

func runWith(t *testing.T, c *cli.Command, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	code := c.Run(context.Background(), args)
	r := result{code, out.String(), errb.String()}
	t.Logf("eventctl %s -> %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, r.stdout, r.stderr)
	return r
}

const (
	typeCreated   = "com.example.orders.order.created.v1"
	typeProcessed = "com.example.payments.payment.processed.v1"
)

// letters are three dead letters: two the payment function dead-lettered
// itself (dlq-* attributes, original topic known) and one Pub/Sub
// forwarded after its delivery attempts (only its subscription known).
func letters() []dlq.Entry {
	return []dlq.Entry{
		{
			MessageID: "dl-1", OriginalTopic: "order.created", Subscription: "payment--order.created",
			Attributes: map[string]string{
				"ce-id": "ev-1", "ce-type": typeCreated, "ce-source": "orders-api", "ce-specversion": "1.0",
				"Content-Type": "application/json", "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
				"dlq-reason-class": "permanent", "dlq-reason": "decode order: missing customer_id",
				"dlq-consumer": "payment", "dlq-source-topic": "order.created", "dlq-subscription": "payment--order.created",
				"dlq-message-id": "orig-1", "dlq-ordering-key": "order-1", "dlq-time": "2030-01-01T10:00:00Z",
			},
			Body:        []byte(`{"order_id":"order-1","items":[]}`),
			ReasonClass: "permanent", ReasonMessage: "decode order: missing customer_id", DeliveryAttempts: 1,
			DeadLetteredAt: dlqtest.Time("2030-01-01T10:00:00Z"),
		},
		{
			MessageID: "dl-2",
			Attributes: map[string]string{
				"ce-id": "ev-2", "ce-type": typeProcessed, "ce-source": "payment",
				deadletter.AttrPubSubSubscription:  "projects/" + pubsubtest.Project + "/subscriptions/shipment--payment.processed",
				deadletter.AttrPubSubDeliveryCount: "5",
			},
			Body:           []byte(`{"order_id":"order-2"}`),
			DeadLetteredAt: dlqtest.Time("2030-01-01T11:00:00Z"),
		},
		{
			MessageID: "dl-3", OriginalTopic: "order.created", Subscription: "payment--order.created",
			Attributes:  map[string]string{"ce-id": "ev-3", "ce-type": typeCreated, "dlq-reason-class": "permanent", "dlq-reason": "decode order: missing customer_id"},
			Body:        []byte{0xde, 0xad, 0xbe, 0xef},
			ReasonClass: "permanent", ReasonMessage: "decode order: missing customer_id",
			DeadLetteredAt: dlqtest.Time("2030-01-01T12:00:00Z"),
		},
	}
}

func TestDLQListAndShowFromJSONL(t *testing.T) {
	newStack(t, letters()...)
	checkListAndShow(t)
}

func TestDLQListAndShowFromBigQuery(t *testing.T) {
	newStack(t)
	srv := dlqtest.NewBigQuery(t, letters()...)
	t.Setenv("BIGQUERY_EMULATOR_HOST", srv.URL)
	t.Setenv("BIGQUERY_PROJECT", "analytics-proj")
	t.Setenv("BIGQUERY_DATASET", "ops") // selects the BigQuery archive
	checkListAndShow(t)
	reqs := srv.Requests()
	if len(reqs) == 0 || !strings.Contains(reqs[0].Query, "`analytics-proj.ops.dead_letters`") {
		t.Fatalf("queries %+v", reqs)
	}
}

func checkListAndShow(t *testing.T) {
	r := run(t, "dlq", "list")
	if r.code != 0 {
		t.Fatalf("list exit %d", r.code)
	}
	for _, want := range []string{"dl-1", "dl-2", "dl-3", "payment--order.created", "shipment--payment.processed",
		"permanent: decode order: missing customer_id", "delivery_attempts: maximum delivery attempts reached (5)"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("list output lacks %q", want)
		}
	}
	// How often: the two payment dead letters form one group of 2.
	if !strings.Contains(r.stdout, "2      payment--order.created") {
		t.Errorf("list output lacks the group count of payment--order.created")
	}

	r = run(t, "dlq", "list", "--type", typeProcessed, "--json")
	var raw struct {
		Entries []map[string]any `json:"entries"`
		Groups  []dlq.Group      `json:"groups"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil || r.code != 0 {
		t.Fatalf("list --json: %v (exit %d)", err, r.code)
	}
	if len(raw.Entries) != 1 || raw.Entries[0]["message_id"] != "dl-2" || raw.Entries[0]["subscription"] != "shipment--payment.processed" ||
		len(raw.Groups) != 1 || raw.Groups[0].Count != 1 || raw.Groups[0].ReasonClass != dlarchive.ReasonDeliveryAttempts {
		t.Errorf("list --json --type = %+v", raw)
	}

	r = run(t, "dlq", "list", "--subscription", "payment--order.created", "--since", "2030-01-01T11:00:00Z", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil || len(raw.Entries) != 1 || raw.Entries[0]["message_id"] != "dl-3" {
		t.Errorf("list filtered = %+v, %v", raw.Entries, err)
	}

	r = run(t, "dlq", "show", "dl-1")
	for _, want := range []string{"Event ID:", "ev-1", "Original topic:", "order.created", "decode order: missing customer_id",
		"dlq-ordering-key", "traceparent", `"order_id": "order-1"`} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("show output lacks %q", want)
		}
	}
	r = run(t, "dlq", "show", "dl-3", "--json")
	var shown map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &shown); err != nil || shown["body"] != "3q2+7w==" || shown["body_encoding"] != "base64" {
		t.Errorf("show --json binary body: %v %v", shown, err)
	}
	r = run(t, "dlq", "show", "nope")
	if r.code != 1 || !strings.Contains(r.stderr, "no such dead letter: nope") {
		t.Errorf("show unknown id: exit %d, %q", r.code, r.stderr)
	}
}

// createTopics creates the original topics, a subscription per topic so
// the dead letter forwarded by Pub/Sub can be resolved to its topic.
func (s *stack) createTopics(t *testing.T) {
	s.ps.CreateTopic(t, "order.created")
	s.ps.CreateTopic(t, "payment.processed")
	s.ps.CreateSubscription(t, "payment--order.created", "order.created")
	s.ps.CreateSubscription(t, "shipment--payment.processed", "payment.processed")
}

func (s *stack) published(t *testing.T) map[string][]messaging.Published {
	out := map[string][]messaging.Published{}
	for _, m := range s.ps.Server.Messages() {
		topic := dlarchive.ResourceID(m.Topic)
		out[m.Attributes["ce-id"]] = append(out[m.Attributes["ce-id"]], messaging.Published{Topic: topic, ID: m.ID,
			Message: messaging.Message{Data: m.Data, Attributes: m.Attributes, OrderingKey: m.OrderingKey}})
	}
	return out
}

func (s *stack) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := s.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func TestReplayPublishesToOriginalTopicAndAudits(t *testing.T) {
	s := newStack(t, letters()...)
	s.createTopics(t)

	r := run(t, "dlq", "replay", "--all", "--rate", "0")
	if r.code != 0 {
		t.Fatalf("replay exit %d", r.code)
	}
	pub := s.published(t)
	if len(pub) != 3 {
		t.Fatalf("published %d events, want 3: %v", len(pub), pub)
	}
	want := map[string]struct{ topic, key string }{"ev-1": {"order.created", "order-1"}, "ev-2": {"payment.processed", ""}, "ev-3": {"order.created", ""}}
	byEvent := map[string]dlq.Entry{}
	for _, e := range letters() {
		byEvent[e.EventID()] = e
	}
	var replayID string
	for ev, w := range want {
		if len(pub[ev]) != 1 {
			t.Fatalf("event %s published %d times", ev, len(pub[ev]))
		}
		m := pub[ev][0]
		orig := byEvent[ev]
		if m.Topic != w.topic || m.OrderingKey != w.key || !bytes.Equal(m.Data, orig.Body) {
			t.Errorf("event %s: topic %s key %q body %q", ev, m.Topic, m.OrderingKey, m.Data)
		}
		for k, v := range orig.Attributes {
			keep := !strings.HasPrefix(k, "dlq-") && !strings.HasPrefix(k, "CloudPubSubDeadLetterSource")
			if got, ok := m.Attributes[k]; keep && got != v {
				t.Errorf("event %s: attribute %s = %q, want %q", ev, k, got, v)
			} else if !keep && ok {
				t.Errorf("event %s: reason attribute %s kept", ev, k)
			}
		}
		if m.Attributes["replay-count"] != "1" || m.Attributes["replayed-by"] != "alice@test" || m.Attributes["replayed-at"] == "" || m.Attributes["replay-id"] == "" {
			t.Errorf("event %s: replay attributes %v", ev, m.Attributes)
		}
		if replayID == "" {
			replayID = m.Attributes["replay-id"]
		} else if m.Attributes["replay-id"] != replayID {
			t.Errorf("one run, two replay ids")
		}
	}
	if !strings.Contains(r.stdout, "replay "+replayID+": 3 selected, 3 published, 0 failed, 0 refused") {
		t.Errorf("summary missing")
	}
	// Audit: the run and one row per message, original -> new message id.
	if n := s.count(t, `SELECT count(*) FROM dlq_replays WHERE replay_id = $1 AND replayed_by = 'alice@test' AND result = 'completed'
		AND published = 3 AND selected = 3 AND finished_at IS NOT NULL AND NOT forced`, replayID); n != 1 {
		t.Errorf("dlq_replays run rows = %d", n)
	}
	for ev := range want {
		m := pub[ev][0]
		if n := s.count(t, `SELECT count(*) FROM dlq_replay_messages WHERE event_id = $1 AND new_message_id = $2 AND result = 'published'
			AND replay_count = 1 AND topic = $3`, ev, m.ID, m.Topic); n != 1 {
			t.Errorf("audit row of %s missing", ev)
		}
	}
	if n := s.count(t, `SELECT count(*) FROM dlq_replay_messages WHERE archive_id = 'dl-1' AND original_message_id = 'orig-1'`); n != 1 {
		t.Errorf("original message id not recorded")
	}

	// The same dead letters again: refused, nothing published, exit 1.
	r = run(t, "dlq", "replay", "--subscription", "payment--order.created", "--rate", "0")
	if r.code != 1 || strings.Count(r.stdout, "refused dl-") != 2 || !strings.Contains(r.stdout, "use --force") {
		t.Errorf("second replay: exit %d", r.code)
	}
	if n := len(s.ps.Server.Messages()); n != 3 {
		t.Errorf("second replay published: %d messages in all", n)
	}
	// A dry run says the same without recording anything.
	runs := s.count(t, `SELECT count(*) FROM dlq_replays`)
	r = run(t, "dlq", "replay", "--type", typeProcessed, "--dry-run")
	if r.code != 0 || !strings.Contains(r.stdout, "would refuse dl-2") {
		t.Errorf("dry run after replay: exit %d", r.code)
	}
	if s.count(t, `SELECT count(*) FROM dlq_replays`) != runs {
		t.Errorf("dry run wrote an audit row")
	}
	// --force replays again, with replay-count 2.
	r = run(t, "dlq", "replay", "--type", typeProcessed, "--force", "--rate", "0")
	if r.code != 0 {
		t.Fatalf("forced replay exit %d", r.code)
	}
	pub = s.published(t)
	if len(pub["ev-2"]) != 2 || pub["ev-2"][1].Attributes["replay-count"] != "2" || pub["ev-2"][1].Attributes["ce-id"] != "ev-2" {
		t.Errorf("forced replay: %+v", pub["ev-2"])
	}
	if n := s.count(t, `SELECT count(*) FROM dlq_replays WHERE forced`); n != 1 {
		t.Errorf("forced runs = %d", n)
	}
}

func TestReplayDryRunPublishesAndRecordsNothing(t *testing.T) {
	s := newStack(t, letters()...)
	s.createTopics(t)
	r := run(t, "dlq", "replay", "--all", "--dry-run")
	if r.code != 0 {
		t.Fatalf("exit %d", r.code)
	}
	for _, want := range []string{"would publish dl-1 (event ev-1, " + typeCreated + ") to order.created",
		"would publish dl-2 (event ev-2, " + typeProcessed + ") to payment.processed", "3 would be published", "nothing was published or recorded"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("dry run output lacks %q", want)
		}
	}
	if n := len(s.ps.Server.Messages()); n != 0 {
		t.Errorf("dry run published %d messages", n)
	}
	if n := s.count(t, `SELECT count(*) FROM pg_tables WHERE tablename LIKE 'dlq_replay%'`); n != 0 {
		t.Errorf("dry run created the audit tables")
	}
}

func TestReplayLimitAndFilters(t *testing.T) {
	s := newStack(t, letters()...)
	s.createTopics(t)
	r := run(t, "dlq", "replay", "--subscription", "payment--order.created", "--limit", "1", "--rate", "0")
	if r.code != 0 {
		t.Fatalf("exit %d", r.code)
	}
	pub := s.published(t)
	if len(pub) != 1 || len(pub["ev-1"]) != 1 {
		t.Fatalf("--limit 1 published %v", pub)
	}
	r = run(t, "dlq", "replay", "--since", "2030-01-01T10:30:00Z", "--until", "2030-01-01T11:30:00Z", "--rate", "0")
	pub = s.published(t)
	if r.code != 0 || len(pub) != 2 || len(pub["ev-2"]) != 1 {
		t.Fatalf("time range published %v", pub)
	}
	if n := s.count(t, `SELECT count(*) FROM dlq_replay_messages`); n != 2 {
		t.Errorf("audit rows = %d, want 2", n)
	}
}

// A dead letter whose topic no longer exists fails, is recorded as failed,
// the others go on, and it can be replayed later without --force.
func TestReplayFailureIsRecordedAndRetryable(t *testing.T) {
	s := newStack(t, letters()...)
	s.ps.CreateTopic(t, "payment.processed")
	s.ps.CreateSubscription(t, "shipment--payment.processed", "payment.processed")
	r := run(t, "dlq", "replay", "--all", "--rate", "0", "--timeout", "5s")
	if r.code != 1 || !strings.Contains(r.stdout, "failed dl-1") || !strings.Contains(r.stdout, "1 published, 2 failed") {
		t.Fatalf("exit %d", r.code)
	}
	if n := s.count(t, `SELECT count(*) FROM dlq_replay_messages WHERE result = 'failed' AND error <> ''`); n != 2 {
		t.Errorf("failed audit rows = %d", n)
	}
	if n := s.count(t, `SELECT count(*) FROM dlq_replays WHERE result = 'completed_with_errors'`); n != 1 {
		t.Errorf("run result not recorded")
	}
	s.ps.CreateTopic(t, "order.created")
	r = run(t, "dlq", "replay", "--subscription", "payment--order.created", "--rate", "0")
	if r.code != 0 || len(s.published(t)["ev-1"]) != 1 {
		t.Errorf("retry after failure: exit %d", r.code)
	}
}

// fakeClock advances only when slept on.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(_ context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	return nil
}

func TestReplayRateLimit(t *testing.T) {
	var entries []dlq.Entry
	for i := range 5 {
		e := letters()[0]
		e.MessageID = fmt.Sprintf("dl-%d", i)
		e.Attributes = map[string]string{"ce-id": fmt.Sprintf("ev-%d", i), "ce-type": typeCreated}
		e.DeadLetteredAt = e.DeadLetteredAt.Add(time.Duration(i) * time.Minute)
		entries = append(entries, e)
	}
	s := newStack(t, entries...)
	s.createTopics(t)
	clock := &fakeClock{now: time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC)}
	c := &cli.Command{Getenv: os.Getenv, Clock: clock}
	r := runWith(t, c, "dlq", "replay", "--all", "--rate", "2/s", "--progress-every", "2")
	if r.code != 0 {
		t.Fatalf("exit %d", r.code)
	}
	// A token bucket of 2/s with a burst of one: the first publish at once,
	// each next one 500ms later.
	if !slices.Equal(clock.sleeps, []time.Duration{500 * time.Millisecond, 500 * time.Millisecond, 500 * time.Millisecond, 500 * time.Millisecond}) {
		t.Errorf("sleeps %v", clock.sleeps)
	}
	if n := len(s.ps.Server.Messages()); n != 5 {
		t.Errorf("published %d", n)
	}
	// Progress on stderr every 2 messages (and once a second of the clock),
	// ending with the total.
	for _, want := range []string{"replay: 2/5 published=2", "replay: 4/5 published=4", "replay: 5/5 published=5 failed=0 refused=0 elapsed=2s rate=2.5/s"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("progress lacks %q", want)
		}
	}
}

func TestReplayRefusesUnfilteredWithoutAll(t *testing.T) {
	s := newStack(t, letters()...)
	s.createTopics(t)
	r := run(t, "dlq", "replay")
	if r.code != 2 || !strings.Contains(r.stderr, "--all") || len(s.ps.Server.Messages()) != 0 {
		t.Errorf("unfiltered replay: exit %d", r.code)
	}
}

func TestIdempotencyInspectAndPurge(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	if err := idempotency.Migrate(ctx, s.pool); err != nil {
		t.Fatal(err)
	}
	store, err := idempotency.New(s.pool, idempotency.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		key := idempotency.Key{Consumer: "payment", ID: fmt.Sprintf("orders-api/ev-%d", i)}
		c, err := store.Claim(ctx, key, idempotency.HashPayload([]byte("x")), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.Complete(ctx, c, []byte(`{"payment_id":"p-1"}`)); err != nil {
			t.Fatal(err)
		}
	}
	r := run(t, "idempotency", "inspect", "payment:orders-api/ev-0")
	for _, want := range []string{"payment:orders-api/ev-0", "done", `{"payment_id":"p-1"}`, "Completed:"} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("inspect output lacks %q (exit %d)", want, r.code)
		}
	}
	r = run(t, "idempotency", "inspect", "payment:orders-api/ev-0", "--json")
	var rec map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &rec); err != nil || rec["status"] != "done" || rec["consumer"] != "payment" {
		t.Errorf("inspect --json: %v %v", rec, err)
	}
	r = run(t, "idempotency", "inspect", "payment:nope")
	if r.code != 1 || !strings.Contains(r.stderr, "no idempotency record for payment:nope") {
		t.Errorf("inspect unknown: exit %d", r.code)
	}

	// Two records are 40 days old, one is fresh.
	if _, err := s.pool.Exec(ctx, `UPDATE processed_events SET completed_at = now() - interval '40 days', created_at = now() - interval '40 days'
		WHERE event_key <> 'orders-api/ev-0'`); err != nil {
		t.Fatal(err)
	}
	total := func() int { return s.count(t, `SELECT count(*) FROM processed_events`) }

	// Non-interactive without --yes: refuses, deletes nothing.
	r = run(t, "idempotency", "purge", "--older-than", "30d")
	if r.code != 1 || !strings.Contains(r.stdout, "2 idempotency record(s) older than 30d") || !strings.Contains(r.stderr, "refusing to delete without --yes") {
		t.Errorf("purge without --yes: exit %d", r.code)
	}
	if total() != 3 {
		t.Fatalf("purge without --yes deleted records")
	}
	// Interactive, answered no: nothing deleted.
	c := &cli.Command{Getenv: os.Getenv, Interactive: func() bool { return true }, Stdin: strings.NewReader("n\n")}
	if r = runWith(t, c, "idempotency", "purge", "--older-than", "720h"); r.code != 1 || total() != 3 || !strings.Contains(r.stdout, "nothing deleted") {
		t.Errorf("purge answered no: exit %d, %d left", r.code, total())
	}
	// Interactive, answered yes.
	c = &cli.Command{Getenv: os.Getenv, Interactive: func() bool { return true }, Stdin: strings.NewReader("yes\n")}
	if r = runWith(t, c, "idempotency", "purge", "--older-than", "720h"); r.code != 0 || total() != 1 || !strings.Contains(r.stdout, "deleted 2") {
		t.Errorf("purge answered yes: exit %d, %d left", r.code, total())
	}
	// --yes with nothing old enough: nothing to purge.
	if r = run(t, "idempotency", "purge", "--older-than", "30d", "--yes"); r.code != 0 || total() != 1 || !strings.Contains(r.stdout, "nothing to purge") {
		t.Errorf("purge --yes: exit %d", r.code)
	}
	// A short age warns.
	if r = run(t, "idempotency", "purge", "--older-than", "1h", "--yes"); r.code != 0 || !strings.Contains(r.stderr, "warning") {
		t.Errorf("short purge: exit %d", r.code)
	}
}

func TestOutboxStatusAndFlush(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	if err := outbox.Migrate(ctx, s.pool); err != nil {
		t.Fatal(err)
	}
	r := run(t, "outbox", "status")
	if r.code != 0 || !strings.Contains(r.stdout, "nothing pending") {
		t.Errorf("empty status: exit %d", r.code)
	}
	s.ps.CreateTopic(t, "order.created")
	for i := range 3 {
		if _, err := outbox.Write(ctx, s.pool, "order.created", messaging.Message{Data: []byte(fmt.Sprint(i)), OrderingKey: "order-1",
			Attributes: map[string]string{"ce-id": fmt.Sprint("ev-", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := outbox.Write(ctx, s.pool, "missing.topic", messaging.Message{Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	r = run(t, "outbox", "status", "--json")
	var st []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || len(st) != 2 {
		t.Fatalf("status --json: %v %v", st, err)
	}
	pending := map[string]float64{}
	for _, row := range st {
		pending[row["topic"].(string)] = row["pending"].(float64)
	}
	if pending["order.created"] != 3 || pending["missing.topic"] != 1 {
		t.Errorf("pending %v", pending)
	}

	// --limit 2 publishes two rows of the key, in order.
	r = run(t, "outbox", "flush", "--limit", "2", "--timeout", "5s")
	if got := len(s.ps.Server.Messages()); got != 2 || r.code == 2 {
		t.Fatalf("flush --limit 2 published %d (exit %d)", got, r.code)
	}
	// The rest: order.created drains, missing.topic keeps failing: exit 1
	// and the status shows it.
	r = run(t, "outbox", "flush", "--timeout", "5s")
	msgs := s.ps.Server.Messages()
	var data []string
	for _, m := range msgs {
		data = append(data, string(m.Data))
	}
	if !slices.Equal(data, []string{"0", "1", "2"}) {
		t.Errorf("published %v", data)
	}
	if r.code != 1 || !strings.Contains(r.stdout, "1 row(s) still pending (1 failing)") || !strings.Contains(r.stdout, "missing.topic") {
		t.Errorf("flush with a failing topic: exit %d", r.code)
	}
	r = run(t, "outbox", "status")
	if !strings.Contains(r.stdout, "missing.topic") || strings.Contains(r.stdout, "order.created") {
		t.Errorf("status after flush")
	}
}

func TestOutboxStuckRetryPark(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	if err := outbox.Migrate(ctx, s.pool); err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for i := range 2 {
		id, err := outbox.Write(ctx, s.pool, "late.topic", messaging.Message{Data: []byte(fmt.Sprint(i)), OrderingKey: "k"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	// The topic does not exist yet: the first row fails and blocks k.
	if r := run(t, "outbox", "flush", "--timeout", "5s"); r.code != 1 {
		t.Fatalf("flush: exit %d", r.code)
	}
	if r := run(t, "outbox", "stuck"); r.code != 0 || !strings.Contains(r.stdout, "no stuck rows") {
		t.Fatalf("a fresh failure is not stuck yet: exit %d, %q", r.code, r.stdout)
	}
	if _, err := s.pool.Exec(ctx, `UPDATE outbox SET created_at = now() - interval '1 hour'`); err != nil {
		t.Fatal(err)
	}
	r := run(t, "outbox", "stuck", "--json")
	var stuck []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &stuck); err != nil || len(stuck) != 1 {
		t.Fatalf("stuck --json: %q, %v", r.stdout, err)
	}
	if row := stuck[0]; row["id"] != float64(ids[0]) || row["blocked"] != float64(1) || row["parked"] != false || row["attempts"] != float64(1) ||
		!strings.Contains(row["last_error"].(string), "late.topic") {
		t.Fatalf("stuck row %v", row)
	}
	if r := run(t, "outbox", "status"); !strings.Contains(r.stdout, "STUCK") {
		t.Errorf("status lacks the stuck column: %q", r.stdout)
	}
	// Parked: listed as parked, not retried, its key still blocked.
	if r := run(t, "outbox", "park", fmt.Sprint(ids[0])); r.code != 0 || !strings.Contains(r.stdout, "parked") {
		t.Fatalf("park: exit %d, %q", r.code, r.stderr)
	}
	s.ps.CreateTopic(t, "late.topic")
	if _, err := s.pool.Exec(ctx, `UPDATE outbox SET next_attempt_at = now()`); err != nil {
		t.Fatal(err)
	}
	if r := run(t, "outbox", "flush", "--timeout", "5s"); len(s.ps.Server.Messages()) != 0 {
		t.Fatalf("flush published a parked row or its key (exit %d)", r.code)
	}
	if r := run(t, "outbox", "stuck"); !strings.Contains(r.stdout, "parked") {
		t.Errorf("stuck does not show the parked row: %q", r.stdout)
	}
	// Retried: due now and unparked; the key drains in order.
	if r := run(t, "outbox", "retry", fmt.Sprint(ids[0])); r.code != 0 {
		t.Fatalf("retry: exit %d, %q", r.code, r.stderr)
	}
	if r := run(t, "outbox", "flush", "--timeout", "5s"); r.code != 0 {
		t.Fatalf("flush after retry: exit %d, %q", r.code, r.stdout)
	}
	var data []string
	for _, m := range s.ps.Server.Messages() {
		data = append(data, string(m.Data))
	}
	if !slices.Equal(data, []string{"0", "1"}) {
		t.Fatalf("published %v", data)
	}
	if r := run(t, "outbox", "retry", fmt.Sprint(ids[0])); r.code != 1 || !strings.Contains(r.stderr, "no pending row") {
		t.Errorf("retry of a published row: exit %d, %q", r.code, r.stderr)
	}
}

func TestBadFlagsExitTwo(t *testing.T) {
	newStack(t, letters()...)
	cases := [][]string{
		{},
		{"nope"},
		{"dlq"},
		{"dlq", "nope"},
		{"dlq", "list", "--bogus"},
		{"dlq", "list", "--since", "yesterday"},
		{"dlq", "list", "--since", "1h", "--until", "2h"},
		{"dlq", "list", "--limit", "-1"},
		{"dlq", "list", "extra"},
		{"dlq", "show"},
		{"dlq", "show", "a", "b"},
		{"dlq", "list", "--archive", "s3:bucket"},
		{"dlq", "list", "--archive", "bigquery:onlyproject"},
		{"dlq", "replay", "--all", "--rate", "fast"},
		{"dlq", "replay", "--all", "--rate", "5/d"},
		{"dlq", "replay", "--all", "--progress-every", "0"},
		{"idempotency", "inspect"},
		{"idempotency", "inspect", "no-colon"},
		{"idempotency", "purge"},
		{"idempotency", "purge", "--older-than", "-1h"},
		{"idempotency", "purge", "--older-than", "soon"},
		{"outbox", "flush", "--limit", "-3"},
		{"outbox", "status", "--timeout", "0s"},
		{"outbox", "status", "--database-url", "::not a url::"},
		{"outbox", "retry"},
		{"outbox", "park", "x"},
		{"outbox", "stuck", "--limit", "0"},
	}
	for _, args := range cases {
		r := run(t, args...)
		if r.code != 2 || !strings.HasPrefix(r.stderr, "eventctl: ") || !strings.Contains(r.stderr, "Usage") {
			t.Errorf("eventctl %q: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
	if r := run(t, "dlq", "list", "-h"); r.code != 0 || !strings.Contains(r.stdout, "Usage: eventctl dlq list") {
		t.Errorf("-h: exit %d", r.code)
	}
	if r := run(t, "help"); r.code != 0 || !strings.Contains(r.stdout, "eventctl dlq replay") {
		t.Errorf("help: exit %d", r.code)
	}
}

func TestMissingConfigurationIsAUsageError(t *testing.T) {
	newStack(t)
	t.Setenv("DATABASE_URL", "")
	t.Setenv("GOOGLE_CLOUD_PROJECT", "")
	for args, want := range map[string]string{
		"outbox status":               "no database configured",
		"dlq list":                    "no dead-letter archive configured",
		"dlq replay --all --dry-run":  "no dead-letter archive configured",
		"idempotency inspect a:b":     "no database configured",
		"outbox flush --database-url": "flag needs an argument",
	} {
		r := run(t, strings.Fields(args)...)
		if r.code != 2 || !strings.Contains(r.stderr, want) {
			t.Errorf("%s: exit %d, stderr lacks %q", args, r.code, want)
		}
	}
}

func TestUnreachableBackends(t *testing.T) {
	newStack(t, letters()...)
	// Nothing listens on a port we just closed.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	// A server that accepts and never answers: only the timeout ends the wait.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()

	t.Setenv("DATABASE_URL", "postgres://ops:secret@"+closed+"/platform")
	r := run(t, "outbox", "status", "--timeout", "2s")
	if r.code != 1 || !strings.Contains(r.stderr, "database postgres at "+closed) || !strings.Contains(r.stderr, "unreachable") || strings.Contains(r.stderr, "secret") {
		t.Errorf("closed port: exit %d, %q", r.code, r.stderr)
	}

	t.Setenv("DATABASE_URL", "postgres://ops:secret@"+silent.Addr().String()+"/platform")
	start := time.Now()
	r = run(t, "idempotency", "inspect", "a:b", "--timeout", "1s")
	if r.code != 1 || !strings.Contains(r.stderr, "unreachable within 1s") {
		t.Errorf("silent server: exit %d, %q", r.code, r.stderr)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %s despite --timeout 1s", d)
	}

	// Pub/Sub: the database is fine, the emulator is not there.
	t.Setenv("DATABASE_URL", pgtest.NewDatabase(t))
	t.Setenv("PUBSUB_EMULATOR_HOST", closed)
	r = run(t, "outbox", "flush", "--timeout", "1s")
	if r.code != 1 || !strings.Contains(r.stderr, "pubsub emulator at "+closed+" (project test-project) unreachable within 1s") {
		t.Errorf("pubsub: exit %d, %q", r.code, r.stderr)
	}

	// BigQuery archive endpoint down.
	t.Setenv("EVENTCTL_ARCHIVE", "bigquery:proj.ops")
	t.Setenv("BIGQUERY_EMULATOR_HOST", closed)
	r = run(t, "dlq", "list", "--timeout", "2s")
	if r.code != 1 || !strings.Contains(r.stderr, "bigquery:proj.ops.dead_letters at "+closed) {
		t.Errorf("bigquery: exit %d, %q", r.code, r.stderr)
	}
}

// The README documents every command with an example.
func TestREADMECoversEveryCommand(t *testing.T) {
	b, err := os.ReadFile("../../cmd/eventctl/README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"dlq list", "dlq show", "dlq replay", "idempotency inspect", "idempotency purge", "outbox status", "outbox flush", "outbox stuck", "outbox retry", "outbox park", "parked list", "parked show", "parked replay", "parked discard"} {
		if !strings.Contains(string(b), "### `"+cmd) || !strings.Contains(string(b), "eventctl "+cmd) {
			t.Errorf("README lacks a section and an example of %q", cmd)
		}
	}
}

// omittedLetter is a dead letter whose body was too large to dead-letter:
// the archive holds a reference instead.
func omittedLetter() dlq.Entry {
	orig := messaging.Message{
		Data:       bytes.Repeat([]byte(`{"blob":"`), 2000),
		Attributes: map[string]string{"ce-id": "ev-big", "ce-type": typeCreated, "ce-source": "orders-api"},
	}
	m := deadletter.OmitBody(deadletter.Annotate(orig, deadletter.Reason{
		Err: errors.New("decode order: too large"), Consumer: "payment", SourceTopic: "order.created", Subscription: "payment--order.created",
	}))
	return dlarchive.NewRecord(m, dlarchive.Received{MessageID: "dl-big", At: dlqtest.Time("2030-01-02T10:00:00Z")})
}

func TestDLQShowAndReplayOfOmittedBody(t *testing.T) {
	s := newStack(t, append(letters(), omittedLetter())...)
	s.createTopics(t)

	r := run(t, "dlq", "show", "dl-big")
	if r.code != 0 {
		t.Fatalf("show exit %d", r.code)
	}
	for _, want := range []string{"Body omitted: it was too large to dead-letter", "cannot be replayed", "18000 bytes", `{"blob":"{"blob":"`} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("show output lacks %q", want)
		}
	}
	r = run(t, "dlq", "show", "dl-big", "--json")
	var j struct {
		BodyOmitted *deadletter.BodyReference `json:"body_omitted"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &j); err != nil || j.BodyOmitted == nil || j.BodyOmitted.Size != 18000 {
		t.Errorf("show --json body_omitted = %+v, %v", j.BodyOmitted, err)
	}

	for _, args := range [][]string{{"--dry-run"}, {"--force"}} {
		r = run(t, append([]string{"dlq", "replay", "--type", typeCreated, "--rate", "0"}, args...)...)
		if !strings.Contains(r.stdout, "failed dl-big (event ev-big): the body was too large to dead-letter and was replaced by a reference (18000 bytes, sha256 ") {
			t.Errorf("replay %v: no clear refusal of dl-big", args)
		}
	}
	for _, p := range s.published(t)["ev-big"] {
		t.Errorf("the reference was published to %s: %q", p.Topic, p.Data)
	}
}
