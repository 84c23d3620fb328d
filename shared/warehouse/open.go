package warehouse

import (
	"context"
	"fmt"
	"io"
	"log/slog"
)

// Sink kinds accepted by Open.
const (
	KindBigQuery = "bigquery"
	KindJSONL    = "jsonl"
	KindMemory   = "memory"
)

// OpenConfig selects and configures a sink.
type OpenConfig struct {
	// Kind is KindBigQuery (the default), KindJSONL or KindMemory.
	Kind string
	// BigQuery configures the KindBigQuery sink.
	BigQuery BigQueryConfig
	// JSONLPath is the KindJSONL sink's file.
	JSONLPath string
	// Tables are the schemas the JSONL and memory sinks validate against.
	Tables map[string]Schema
	// Logger receives the start-up warning of a non-BigQuery sink.
	// Default slog.Default().
	Logger *slog.Logger
}

// ValidKind reports whether kind names a sink Open can build; it is
// suitable as an environment variable check.
func ValidKind(kind string) error {
	switch kind {
	case KindBigQuery, KindJSONL, KindMemory:
		return nil
	}
	return fmt.Errorf("want %s, %s or %s", KindBigQuery, KindJSONL, KindMemory)
}

// Open builds the sink cfg selects and returns it with its closer. A JSONL
// or memory sink is for local runs only: Open logs a loud WARNING saying
// rows do not reach BigQuery.
func Open(ctx context.Context, cfg OpenConfig) (Sink, io.Closer, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	switch cfg.Kind {
	case KindBigQuery, "":
		bq, err := NewBigQuery(ctx, cfg.BigQuery)
		if err != nil {
			return nil, nil, err
		}
		return bq, bq, nil
	case KindJSONL:
		if cfg.JSONLPath == "" {
			return nil, nil, fmt.Errorf("warehouse: the jsonl sink needs a file path")
		}
		j, err := NewJSONL(cfg.JSONLPath, cfg.Tables)
		if err != nil {
			return nil, nil, err
		}
		logger.WarnContext(ctx, "WARNING: rows are written to the local JSON-lines file "+cfg.JSONLPath+
			", NOT to BigQuery. This sink is for local runs only.", "sink", KindJSONL, "path", cfg.JSONLPath)
		return j, j, nil
	case KindMemory:
		logger.WarnContext(ctx, "WARNING: rows are kept in memory and lost when the process exits, NOT written to BigQuery. "+
			"This sink is for tests and local runs only.", "sink", KindMemory)
		return NewMemory(cfg.Tables), io.NopCloser(nil), nil
	default:
		return nil, nil, fmt.Errorf("warehouse: unknown sink %q: %w", cfg.Kind, ValidKind(cfg.Kind))
	}
}
