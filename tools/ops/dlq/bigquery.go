package dlq

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"cloud.google.com/go/bigquery"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"

	"example.com/platform/shared/deadletter"
	dlarchive "example.com/platform/shared/deadletter/archive"
	"example.com/platform/shared/warehouse"
)

// DefaultTable is the archive table the dead-letter function writes.
const DefaultTable = "dead_letters"

// BigQueryConfig says where the archive table is.
type BigQueryConfig struct {
	// Project is the project that runs the query jobs and holds the
	// dataset. Required.
	Project string
	// Dataset holds the table. Required.
	Dataset string
	// Table defaults to DefaultTable.
	Table string
	// Endpoint overrides the API endpoint (an emulator or a test server,
	// e.g. "http://localhost:9050"); requests then go unauthenticated.
	// Empty means the real service with Application Default Credentials.
	Endpoint string
}

// Sentinel errors of BigQueryConfig.Validate.
var (
	ErrNoProject = errors.New("bigquery archive: project is required (BIGQUERY_PROJECT or GOOGLE_CLOUD_PROJECT)")
	ErrNoDataset = errors.New("bigquery archive: dataset is required (BIGQUERY_DATASET)")
)

// Validate reports a missing required field.
func (c BigQueryConfig) Validate() error {
	switch {
	case c.Project == "":
		return ErrNoProject
	case c.Dataset == "":
		return ErrNoDataset
	}
	return nil
}

// BigQuery reads the archive with the BigQuery client (jobs.query). The
// filter's time range, type and subscription are pushed into the query
// (dead_lettered_at is the partitioning column, so a time range limits
// what is scanned and billed) and applied again to the rows returned,
// so the result is exactly Filter.Match. It is safe for concurrent use.
type BigQuery struct {
	client *bigquery.Client
	cfg    BigQueryConfig
}

// NewBigQuery returns an archive reader for cfg. It does not contact the
// service; the first query does.
func NewBigQuery(ctx context.Context, cfg BigQueryConfig) (*BigQuery, error) {
	if cfg.Table == "" {
		cfg.Table = DefaultTable
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var opts []option.ClientOption
	if cfg.Endpoint != "" {
		opts = warehouse.EmulatorOptions(cfg.Endpoint)
	}
	c, err := bigquery.NewClient(ctx, cfg.Project, opts...)
	if err != nil {
		return nil, fmt.Errorf("bigquery client: %w", err)
	}
	return &BigQuery{client: c, cfg: cfg}, nil
}

// Close releases the client.
func (b *BigQuery) Close() error { return b.client.Close() }

// String implements Archive.
func (b *BigQuery) String() string {
	s := fmt.Sprintf("bigquery:%s.%s.%s", b.cfg.Project, b.cfg.Dataset, b.cfg.Table)
	if b.cfg.Endpoint != "" {
		s += " at " + b.cfg.Endpoint
	}
	return s
}

const selectColumns = `message_id, original_topic, subscription, attributes, body, body_encoding,
  reason_class, reason_message, delivery_attempts, publish_time, dead_lettered_at, received_at`

// Query returns the SQL and parameters List runs for f (exported for
// tests and for operators who want to run it themselves).
func (b *BigQuery) Query(f Filter) (string, []bigquery.QueryParameter) {
	var where []string
	var params []bigquery.QueryParameter
	if !f.Since.IsZero() {
		where = append(where, "dead_lettered_at >= @since")
		params = append(params, bigquery.QueryParameter{Name: "since", Value: f.Since})
	}
	if !f.Until.IsZero() {
		where = append(where, "dead_lettered_at < @until")
		params = append(params, bigquery.QueryParameter{Name: "until", Value: f.Until})
	}
	if f.Type != "" {
		where = append(where, `JSON_VALUE(attributes, '$."ce-type"') = @type`)
		params = append(params, bigquery.QueryParameter{Name: "type", Value: f.Type})
	}
	if f.Subscription != "" {
		// The first non-empty of the column and the two attributes, as
		// Entry.SourceSubscription, compared by id.
		where = append(where, fmt.Sprintf(`REGEXP_EXTRACT(COALESCE(NULLIF(subscription, ''),
      JSON_VALUE(attributes, '$."%s"'),
      JSON_VALUE(attributes, '$.%s')), r'[^/]*$') = @subscription`, deadletter.AttrSubscription, deadletter.AttrPubSubSubscription))
		params = append(params, bigquery.QueryParameter{Name: "subscription", Value: dlarchive.ResourceID(f.Subscription)})
	}
	cond := "TRUE"
	if len(where) > 0 {
		cond = strings.Join(where, "\n  AND ")
	}
	sql := fmt.Sprintf("SELECT %s\nFROM (\n  SELECT *, ROW_NUMBER() OVER (PARTITION BY message_id ORDER BY received_at) AS copy_number\n  FROM %s\n  WHERE %s\n)\nWHERE copy_number = 1\nORDER BY dead_lettered_at, message_id",
		selectColumns, b.table(), cond)
	if f.Limit > 0 {
		sql += "\nLIMIT @limit"
		params = append(params, bigquery.QueryParameter{Name: "limit", Value: int64(f.Limit)})
	}
	return sql, params
}

func (b *BigQuery) table() string {
	return fmt.Sprintf("`%s.%s.%s`", b.cfg.Project, b.cfg.Dataset, b.cfg.Table)
}

// List implements Archive.
func (b *BigQuery) List(ctx context.Context, f Filter) ([]Entry, error) {
	sql, params := b.Query(f)
	entries, err := b.read(ctx, sql, params)
	if err != nil {
		return nil, err
	}
	out := entries[:0]
	for _, e := range entries {
		if f.Match(e) {
			out = append(out, e)
		}
	}
	return sortDedupLimit(out, f.Limit), nil
}

// Get implements Archive.
func (b *BigQuery) Get(ctx context.Context, id string) (Entry, error) {
	sql := fmt.Sprintf("SELECT %s\nFROM %s\nWHERE message_id = @id\nORDER BY received_at\nLIMIT 1", selectColumns, b.table())
	entries, err := b.read(ctx, sql, []bigquery.QueryParameter{{Name: "id", Value: id}})
	if err != nil {
		return Entry{}, err
	}
	for _, e := range entries {
		if e.MessageID == id {
			return e, nil
		}
	}
	return Entry{}, fmt.Errorf("%w: %s in %s", ErrNotFound, id, b)
}

func (b *BigQuery) read(ctx context.Context, sql string, params []bigquery.QueryParameter) ([]Entry, error) {
	q := b.client.Query(sql)
	q.Parameters = params
	it, err := q.Read(ctx)
	if err != nil {
		return nil, fmt.Errorf("archive %s: query: %w", b, err)
	}
	var out []Entry
	for {
		var row map[string]bigquery.Value
		err := it.Next(&row)
		if errors.Is(err, iterator.Done) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("archive %s: read rows: %w", b, err)
		}
		m := make(map[string]any, len(row))
		for k, v := range row {
			m[k] = v
		}
		e, err := dlarchive.DecodeRow(m)
		if err != nil {
			return nil, fmt.Errorf("archive %s: row %v: %w", b, row["message_id"], err)
		}
		out = append(out, e)
	}
}
