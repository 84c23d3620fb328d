package warehouse

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"cloud.google.com/go/bigquery"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"

	"example.com/platform/shared/retry"
)

// EnvEmulatorHost names the variable holding a BigQuery emulator's
// host:port. When it is set, NewBigQuery talks to the emulator over plain
// HTTP without credentials.
const EnvEmulatorHost = "BIGQUERY_EMULATOR_HOST"

// DefaultInsertTimeout is BigQueryConfig.InsertTimeout's default.
const DefaultInsertTimeout = 10 * time.Second

// Configuration errors of NewBigQuery.
var (
	ErrNoProject = errors.New("warehouse: BigQuery project is required")
	ErrNoDataset = errors.New("warehouse: BigQuery dataset is required")
)

// BigQueryConfig configures NewBigQuery.
type BigQueryConfig struct {
	// Project and Dataset name the dataset the tables live in. Required.
	Project string
	Dataset string
	// InsertTimeout bounds one Insert, including the client library's own
	// retries of 5xx and rateLimitExceeded responses (exponential backoff
	// from 1s). Default DefaultInsertTimeout; keep it below the handler's
	// time budget so a persistent outage answers in time for Pub/Sub to
	// redeliver.
	InsertTimeout time.Duration
	// Options are passed to bigquery.NewClient after the emulator options
	// (so they win): an endpoint, credentials, an HTTP client.
	Options []option.ClientOption
}

// Validate checks c.
func (c BigQueryConfig) Validate() error {
	var errs []error
	if c.Project == "" {
		errs = append(errs, ErrNoProject)
	}
	if c.Dataset == "" {
		errs = append(errs, ErrNoDataset)
	}
	if c.InsertTimeout < 0 {
		errs = append(errs, fmt.Errorf("warehouse: negative InsertTimeout %s", c.InsertTimeout))
	}
	return errors.Join(errs...)
}

// BigQuery is the production Sink: streaming inserts
// (tabledata.insertAll) through cloud.google.com/go/bigquery, one request
// per Insert, insertId = Row.InsertID. It is safe for concurrent use.
type BigQuery struct {
	client  *bigquery.Client
	dataset string
	timeout time.Duration
}

// NewBigQuery returns a BigQuery sink. It honours BIGQUERY_EMULATOR_HOST.
func NewBigQuery(ctx context.Context, cfg BigQueryConfig) (*BigQuery, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.InsertTimeout == 0 {
		cfg.InsertTimeout = DefaultInsertTimeout
	}
	var opts []option.ClientOption
	if host := os.Getenv(EnvEmulatorHost); host != "" {
		opts = append(opts, EmulatorOptions(host)...)
	}
	opts = append(opts, cfg.Options...)
	c, err := bigquery.NewClient(ctx, cfg.Project, opts...)
	if err != nil {
		return nil, fmt.Errorf("warehouse: bigquery client: %w", err)
	}
	return &BigQuery{client: c, dataset: cfg.Dataset, timeout: cfg.InsertTimeout}, nil
}

// EmulatorOptions are the client options for an emulator at host:port.
func EmulatorOptions(host string) []option.ClientOption {
	if !strings.Contains(host, "://") {
		host = "http://" + host
	}
	return []option.ClientOption{option.WithEndpoint(host), option.WithoutAuthentication(), option.WithHTTPClient(http.DefaultClient)}
}

// Client returns the underlying client (to create tables in tests and on
// an emulator).
func (b *BigQuery) Client() *bigquery.Client { return b.client }

// Close closes the client.
func (b *BigQuery) Close() error { return b.client.Close() }

// CreateTable creates table with schema in the sink's dataset, creating
// the dataset if needed; existing ones are left as they are. Production
// tables are Terraform's: this is for emulators and the local stack.
func (b *BigQuery) CreateTable(ctx context.Context, table string, schema Schema) error {
	ds := b.client.Dataset(b.dataset)
	if err := ds.Create(ctx, nil); err != nil && !isConflict(err) {
		return fmt.Errorf("warehouse: create dataset %s: %w", b.dataset, err)
	}
	if err := ds.Table(table).Create(ctx, &bigquery.TableMetadata{Schema: schema.BigQuery()}); err != nil && !isConflict(err) {
		return fmt.Errorf("warehouse: create table %s: %w", table, err)
	}
	return nil
}

func isConflict(err error) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && ge.Code == http.StatusConflict
}

// BigQuery converts s to the client library's schema.
func (s Schema) BigQuery() bigquery.Schema {
	out := make(bigquery.Schema, len(s))
	for i, f := range s {
		typ := strings.ToUpper(f.Type)
		switch typ {
		case "INT64":
			typ = "INTEGER"
		case "FLOAT64":
			typ = "FLOAT"
		case "BOOL":
			typ = "BOOLEAN"
		case "STRUCT":
			typ = "RECORD"
		}
		fs := &bigquery.FieldSchema{
			Name:        f.Name,
			Type:        bigquery.FieldType(typ),
			Description: f.Description,
			Required:    f.required(),
			Repeated:    f.repeated(),
		}
		if f.isRecord() {
			fs.Schema = Schema(f.Fields).BigQuery()
		}
		out[i] = fs
	}
	return out
}

// saver hands one encoded row and its insert id to the Inserter.
type saver struct {
	id     string
	values map[string]any
}

func (s saver) Save() (map[string]bigquery.Value, string, error) {
	m := make(map[string]bigquery.Value, len(s.values))
	for k, v := range s.values {
		m[k] = v
	}
	return m, s.id, nil
}

// Insert implements Sink with one insertAll request (skipInvalidRows and
// ignoreUnknownValues false, so the request is all or nothing). The
// client library retries 5xx and rateLimitExceeded itself within
// InsertTimeout; what is left is classified as the package documentation
// says.
func (b *BigQuery) Insert(ctx context.Context, table string, rows []Row) error {
	if len(rows) == 0 {
		return nil
	}
	savers := make([]bigquery.ValueSaver, len(rows))
	for i, r := range rows {
		enc, err := Encode(r.Values)
		if err != nil {
			return retry.Permanent(fmt.Errorf("warehouse: insert into %s: row %d: %w", table, i, err))
		}
		savers[i] = saver{id: r.InsertID, values: enc}
	}
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	err := b.client.Dataset(b.dataset).Table(table).Inserter().Put(ctx, savers)
	return classify(table, rows, err)
}

// Reasons of 403 responses that are quota, not permission, problems.
var quotaReasons = map[string]bool{"quotaExceeded": true, "rateLimitExceeded": true}

// classify maps a client library error to the warehouse's classes.
func classify(table string, rows []Row, err error) error {
	if err == nil {
		return nil
	}
	var pme bigquery.PutMultiError
	if errors.As(err, &pme) {
		ie := &InsertError{Table: table}
		for _, re := range pme {
			row := RowError{Index: re.RowIndex, InsertID: re.InsertID}
			if row.InsertID == "" && re.RowIndex >= 0 && re.RowIndex < len(rows) {
				row.InsertID = rows[re.RowIndex].InsertID
			}
			var msgs []string
			for _, e := range re.Errors {
				var be *bigquery.Error
				if errors.As(e, &be) {
					if row.Reason == "" {
						row.Reason, row.Location = be.Reason, be.Location
					}
					msgs = append(msgs, be.Message)
				} else {
					msgs = append(msgs, e.Error())
				}
			}
			row.Message = strings.Join(msgs, "; ")
			ie.Rows = append(ie.Rows, row)
		}
		return retry.Permanent(ie)
	}
	wrapped := fmt.Errorf("warehouse: insert into %s: %w", table, err)
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		reason := ""
		if len(ge.Errors) > 0 {
			reason = ge.Errors[0].Reason
		}
		switch {
		case ge.Code >= 500, ge.Code == http.StatusTooManyRequests, ge.Code == http.StatusRequestTimeout:
			return retry.Transient(wrapped)
		case ge.Code == http.StatusForbidden && quotaReasons[reason]:
			return retry.Transient(wrapped)
		case ge.Code == http.StatusNotFound:
			return retry.Permanent(fmt.Errorf("%w: %s: %w", ErrTableNotFound, table, err))
		case ge.Code >= 400:
			return retry.Permanent(wrapped)
		}
	}
	return retry.Transient(wrapped)
}
