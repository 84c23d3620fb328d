package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Phase is one steady-rate run against the local stack: orders posted to
// the orders API open-loop (each at its scheduled time, whether or not the
// earlier ones were answered), then a wait until every accepted order is
// shipped, then the latencies read from the database.
type Phase struct {
	Rate     float64       // orders per second
	Duration time.Duration // of the posting
	// Posted counts orders the API accepted (201), Failed the posts that
	// failed; Shipped counts accepted orders with a shipment row.
	Posted, Failed, Shipped int
	// Achieved is Posted over the time the posting actually took.
	Achieved float64
	// Latencies are shipments.created_at - orders.created_at per shipped
	// order, sorted.
	Latencies []time.Duration
	// Drain is how long after the last post the last order was shipped
	// (bounded by the drain timeout).
	Drain    time.Duration
	FirstErr error
	// OrderIDs are the accepted orders.
	OrderIDs []string
}

// AllShipped reports whether every post was accepted and every accepted
// order shipped.
func (p *Phase) AllShipped() bool { return p.Failed == 0 && p.Posted > 0 && p.Shipped == p.Posted }

// Quantile returns the q-quantile of the latencies (nearest rank), 0 for
// none.
func (p *Phase) Quantile(q float64) time.Duration {
	if len(p.Latencies) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(p.Latencies)))) - 1
	return p.Latencies[max(0, min(i, len(p.Latencies)-1))]
}

func (p *Phase) String() string {
	s := fmt.Sprintf("rate %.0f/s for %s: posted %d (%.1f/s achieved), failed %d, shipped %d, p50 %s p99 %s max %s, drain %s",
		p.Rate, p.Duration, p.Posted, p.Achieved, p.Failed, p.Shipped, ms(p.Quantile(0.5)), ms(p.Quantile(0.99)), ms(p.Quantile(1)), p.Drain.Round(time.Millisecond))
	if p.FirstErr != nil {
		s += fmt.Sprintf(" (first error: %v)", p.FirstErr)
	}
	return s
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond)) }

// loader posts orders to the orders API.
type loader struct {
	url    string
	client *http.Client
	db     *pgxpool.Pool
	run    string // unique per program run: customer ids and idempotency keys
	seq    int
}

func newLoader(url string, db *pgxpool.Pool, run string) *loader {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 1024
	tr.MaxIdleConnsPerHost = 1024
	return &loader{url: url, db: db, run: run, client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

var orderBody = func() []byte {
	b, _ := json.Marshal(map[string]any{
		"currency": "EUR",
		"items": []map[string]any{
			{"sku": "SKU-1", "quantity": 2, "unit_price": 1250},
			{"sku": "SKU-2", "quantity": 1, "unit_price": 499},
		},
	})
	return b
}()

func (l *loader) post(ctx context.Context, n int) (string, error) {
	var body map[string]any
	_ = json.Unmarshal(orderBody, &body)
	body["customer_id"] = fmt.Sprintf("bench-%s-%d", l.run, n%1000)
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.url+"/v1/orders", bytes.NewReader(b))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", fmt.Sprintf("bench-%s-%08d", l.run, n))
	resp, err := l.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("post order: %w", err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("post order: %s: %s", resp.Status, bytes.TrimSpace(rb))
	}
	var v struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(rb, &v); err != nil || v.ID == "" {
		return "", fmt.Errorf("post order: answer without id: %s", rb)
	}
	return v.ID, nil
}

// runPhase posts at rate for d, then waits up to drain for every accepted
// order to be shipped and reads the latencies.
func (l *loader) runPhase(ctx context.Context, rate float64, d, drain time.Duration) (*Phase, error) {
	p := &Phase{Rate: rate, Duration: d}
	n := int(rate * d.Seconds())
	interval := time.Duration(float64(time.Second) / rate)
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		ids []string
	)
	start := time.Now()
	for i := range n {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				wg.Wait()
				return nil, ctx.Err()
			}
		}
		l.seq++
		seq := l.seq
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := l.post(ctx, seq)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				p.Failed++
				if p.FirstErr == nil {
					p.FirstErr = err
				}
				return
			}
			ids = append(ids, id)
		}()
	}
	wg.Wait()
	posted := time.Now()
	p.Achieved = float64(len(ids)) / posted.Sub(start).Seconds()
	p.Posted, p.OrderIDs = len(ids), ids

	// Wait until every accepted order has its shipment.
	deadline := posted.Add(drain)
	for {
		var shipped int
		if err := l.db.QueryRow(ctx, `SELECT count(*) FROM shipments WHERE order_id = ANY($1::uuid[])`, ids).Scan(&shipped); err != nil {
			return nil, fmt.Errorf("count shipments: %w", err)
		}
		p.Shipped = shipped
		if shipped == len(ids) || time.Now().After(deadline) {
			break
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	rows, err := l.db.Query(ctx, `SELECT EXTRACT(EPOCH FROM (s.created_at - o.created_at))::float8,
	    EXTRACT(EPOCH FROM (s.created_at - $2::timestamptz))::float8
	  FROM orders o JOIN shipments s ON s.order_id = o.id WHERE o.id = ANY($1::uuid[])`, ids, posted)
	if err != nil {
		return nil, fmt.Errorf("read latencies: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var lat, after float64
		if err := rows.Scan(&lat, &after); err != nil {
			return nil, err
		}
		p.Latencies = append(p.Latencies, time.Duration(lat*float64(time.Second)))
		p.Drain = max(p.Drain, time.Duration(after*float64(time.Second)))
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	slices.Sort(p.Latencies)
	return p, nil
}

// errNotShipped is a verification failure of a phase that must ship every
// order.
var errNotShipped = errors.New("not every order was accepted and shipped")
