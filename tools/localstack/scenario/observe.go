package scenario

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sort"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"example.com/platform/shared/domain/orders"
	"example.com/platform/shared/warehouse"
	"example.com/platform/tools/localstack/dispatch"
	"example.com/platform/tools/ops/dlq"
)

// Observed is what the system did, read from its stores. Check judges it.
type Observed struct {
	// Orders are the rows of the batch's order ids (API orders and the
	// poison message's made-up id), with their status history.
	Orders map[string]OrderState
	// Shipments and Payments count the rows per order id.
	Shipments map[string]int
	Payments  map[string]int
	// Charges are the fake gateway's executed charges per order id
	// ("approved" or "declined" each).
	Charges map[string][]string
	// Analytics are the rows of the analytics table "events".
	Analytics []AnalyticsRow
	// DeadLetters are the dead-letter archive's entries, one per message.
	DeadLetters []dlq.Entry
	// OutboxPending is the number of outbox rows not yet published.
	OutboxPending int64
	// Topics counts the messages published per topic.
	Topics []TopicCount
	// Subscriptions are the dispatcher's counters.
	Subscriptions []dispatch.Stats
	// Parked are the batch's ordering keys that payment parked on
	// order.created, by order id: released (in the release audit, no longer
	// parked) or still parked.
	Parked map[string]ParkedKey
	// PaymentApplied is, per order with an order.cancelled event, when
	// payment completed its order.created and its order.cancelled (zero
	// when it did not): the order in which it applied them.
	PaymentApplied map[string]AppliedPair
}

// ParkedKey is what became of one parked key.
type ParkedKey struct {
	StillParked bool
	// Actions are the releases asked for (replay, discard).
	Actions []string
}

// AppliedPair is when payment completed an order's created and cancelled
// events.
type AppliedPair struct {
	Created, Cancelled time.Time
}

// OrderState is one order as stored.
type OrderState struct {
	Status  orders.Status
	History []orders.Status
}

// AnalyticsRow is the part of an analytics row Check needs.
type AnalyticsRow struct {
	EventID, Type, OrderID string
}

// TopicCount is the number of messages published to a topic.
type TopicCount struct {
	Topic     string
	Published int64
}

// Observe reads what happened to the batch.
func (r *Runner) Observe(ctx context.Context, b *Batch) (*Observed, error) {
	ids := make([]string, 0, len(b.Items))
	for _, it := range b.Items {
		if it.OrderID != "" {
			ids = append(ids, it.OrderID)
		}
	}
	o := &Observed{Subscriptions: r.Stack.Dispatcher.Stats()}
	var err error
	if o.Orders, err = loadOrders(ctx, r.db, ids); err != nil {
		return nil, err
	}
	if o.Shipments, err = CountBy(ctx, r.db, `SELECT order_id::text, count(*) FROM shipments WHERE order_id = ANY($1::uuid[]) GROUP BY order_id`, ids); err != nil {
		return nil, fmt.Errorf("count shipments: %w", err)
	}
	if o.Payments, err = CountBy(ctx, r.db, `SELECT order_id::text, count(*) FROM payments WHERE order_id = ANY($1::uuid[]) GROUP BY order_id`, ids); err != nil {
		return nil, fmt.Errorf("count payments: %w", err)
	}
	if o.OutboxPending, err = pendingOutbox(ctx, r.db); err != nil {
		return nil, err
	}
	if o.Charges, err = r.charges(ctx); err != nil {
		return nil, err
	}
	if o.Analytics, err = ReadAnalytics(r.Stack.SinkFiles[Analytics]); err != nil {
		return nil, err
	}
	if o.DeadLetters, err = ReadDeadLetters(ctx, r.Stack.SinkFiles[DeadLetter]); err != nil {
		return nil, err
	}
	for _, t := range r.Stack.Plan.Topics {
		o.Topics = append(o.Topics, TopicCount{Topic: t, Published: r.Stack.Counter.Count(t)})
	}
	if o.Parked, err = loadParked(ctx, r.db, ids); err != nil {
		return nil, err
	}
	if o.PaymentApplied, err = paymentApplied(ctx, r.db, o.Analytics); err != nil {
		return nil, err
	}
	return o, nil
}

// loadParked reads payment's parked keys on order.created among ids, from
// parked_keys (still parked) and the release audit.
func loadParked(ctx context.Context, db *pgxpool.Pool, ids []string) (map[string]ParkedKey, error) {
	out := map[string]ParkedKey{}
	rows, err := db.Query(ctx, `
SELECT ordering_key, true, '' FROM parked_keys WHERE subscription = $1 AND ordering_key = ANY($2)
UNION ALL
SELECT ordering_key, false, action FROM parked_releases WHERE subscription = $1 AND ordering_key = ANY($2)`,
		PoisonSubscription, ids)
	if err != nil {
		return nil, fmt.Errorf("read parked keys: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, action string
		var parked bool
		if err := rows.Scan(&id, &parked, &action); err != nil {
			return nil, fmt.Errorf("read parked keys: %w", err)
		}
		k := out[id]
		if parked {
			k.StillParked = true
		} else {
			k.Actions = append(k.Actions, action)
		}
		out[id] = k
	}
	return out, rows.Err()
}

// paymentApplied reads when payment completed the order.created and
// order.cancelled events of every order with an order.cancelled analytics
// row (its idempotency records: the order it applied them in).
func paymentApplied(ctx context.Context, db *pgxpool.Pool, rows []AnalyticsRow) (map[string]AppliedPair, error) {
	events := map[string]map[string]string{} // order -> type -> event id
	for _, row := range rows {
		if events[row.OrderID] == nil {
			events[row.OrderID] = map[string]string{}
		}
		events[row.OrderID][row.Type] = row.EventID
	}
	out := map[string]AppliedPair{}
	for order, byType := range events {
		if byType[typeCancelled] == "" {
			continue
		}
		var p AppliedPair
		for typ, at := range map[string]*time.Time{typeCreated: &p.Created, typeCancelled: &p.Cancelled} {
			id := byType[typ]
			if id == "" {
				continue
			}
			err := db.QueryRow(ctx, `SELECT coalesce(max(completed_at), 'epoch') FROM processed_events
 WHERE consumer = $1 AND status = 'done' AND event_key LIKE '%/' || $2`, Payment, id).Scan(at)
			if err != nil {
				return nil, fmt.Errorf("read payment's record of %s: %w", id, err)
			}
			if at.Equal(time.Unix(0, 0)) {
				*at = time.Time{}
			}
		}
		out[order] = p
	}
	return out, nil
}

func loadOrders(ctx context.Context, db *pgxpool.Pool, ids []string) (map[string]OrderState, error) {
	out := map[string]OrderState{}
	for _, id := range ids {
		ord, err := orders.Load(ctx, db, id)
		if errors.Is(err, orders.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("load order %s: %w", id, err)
		}
		st := OrderState{Status: ord.Status}
		for _, c := range ord.History {
			st.History = append(st.History, c.Status)
		}
		out[id] = st
	}
	return out, nil
}

// CountBy runs query, which takes the order ids as $1 and returns (id,
// count) rows, and returns the counts by id (ids without a row are absent).
func CountBy(ctx context.Context, db *pgxpool.Pool, query string, ids []string) (map[string]int, error) {
	rows, err := db.Query(ctx, query, ids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, err
		}
		out[id] = n
	}
	return out, rows.Err()
}

// charges reads the fake gateway's executed charges (GET /_fake/charges).
func (r *Runner) charges(ctx context.Context) (map[string][]string, error) {
	var list []struct {
		OrderID string `json:"order_id"`
		Status  string `json:"status"`
	}
	if err := r.Gateway(ctx, http.MethodGet, "/_fake/charges", nil, &list); err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, c := range list {
		out[c.OrderID] = append(out[c.OrderID], c.Status)
	}
	return out, nil
}

// ReadAnalytics reads the rows of the analytics table "events" from the
// analytics function's JSON-lines sink file. A missing file is no rows.
func ReadAnalytics(path string) ([]AnalyticsRow, error) {
	recs, err := warehouse.ReadJSONL(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read analytics rows: %w", err)
	}
	var out []AnalyticsRow
	for _, rec := range recs {
		if rec.Table != "events" {
			continue
		}
		row := AnalyticsRow{EventID: str(rec.Row["event_id"]), Type: str(rec.Row["event_type"])}
		// data is a JSON column: its text, as a string (or an object).
		var data struct {
			OrderID string `json:"order_id"`
		}
		switch d := rec.Row["data"].(type) {
		case string:
			_ = json.Unmarshal([]byte(d), &data)
		case map[string]any:
			data.OrderID = str(d["order_id"])
		}
		row.OrderID = data.OrderID
		out = append(out, row)
	}
	return out, nil
}

// ReadDeadLetters reads the dead-letter archive from the dead-letter
// function's JSON-lines sink file (one entry per dead-letter message). A
// missing file is an empty archive.
func ReadDeadLetters(ctx context.Context, path string) ([]dlq.Entry, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	es, err := (&dlq.JSONL{Path: path}).List(ctx, dlq.Filter{})
	if err != nil {
		return nil, fmt.Errorf("read dead-letter archive: %w", err)
	}
	sort.SliceStable(es, func(i, j int) bool { return es[i].DeadLetteredAt.Before(es[j].DeadLetteredAt) })
	return es, nil
}

func str(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}
