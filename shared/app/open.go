package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"

	"cloud.google.com/go/cloudsqlconn"
	"cloud.google.com/go/pubsub/v2"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"example.com/platform/shared/observability"
)

// OpenDB opens a pool to the configured database. With Database.URL it
// connects directly (local stack, tests); otherwise it dials the Cloud SQL
// instance through cloudsqlconn, with IAM database authentication unless
// DB_IAM_AUTH=false, over the private IP unless DB_IP_TYPE says otherwise.
// The returned close function also closes the dialer.
func OpenDB(ctx context.Context, db Database) (*pgxpool.Pool, func(), error) {
	if db.URL != "" {
		cfg, err := pgxpool.ParseConfig(db.URL)
		if err != nil {
			return nil, nil, fmt.Errorf("database url: %w", err)
		}
		setMaxConns(cfg, db.MaxConns)
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			return nil, nil, fmt.Errorf("open database: %w", err)
		}
		return pool, pool.Close, nil
	}
	var opts []cloudsqlconn.Option
	if db.IAMAuth {
		opts = append(opts, cloudsqlconn.WithIAMAuthN())
	}
	switch db.IPType {
	case "public":
		opts = append(opts, cloudsqlconn.WithDefaultDialOptions(cloudsqlconn.WithPublicIP()))
	case "psc":
		opts = append(opts, cloudsqlconn.WithDefaultDialOptions(cloudsqlconn.WithPSC()))
	default:
		opts = append(opts, cloudsqlconn.WithDefaultDialOptions(cloudsqlconn.WithPrivateIP()))
	}
	dialer, err := cloudsqlconn.NewDialer(ctx, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("cloud sql dialer: %w", err)
	}
	// The IAM user of a service account is its email without
	// ".gserviceaccount.com".
	user := strings.TrimSuffix(db.User, ".gserviceaccount.com")
	cfg, err := pgxpool.ParseConfig(fmt.Sprintf("user=%s dbname=%s sslmode=disable", user, db.Name))
	if err != nil {
		dialer.Close()
		return nil, nil, fmt.Errorf("database config: %w", err)
	}
	setMaxConns(cfg, db.MaxConns)
	cfg.ConnConfig.DialFunc = func(ctx context.Context, _, _ string) (net.Conn, error) {
		return dialer.Dial(ctx, db.Instance)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		dialer.Close()
		return nil, nil, fmt.Errorf("open database: %w", err)
	}
	return pool, func() { pool.Close(); dialer.Close() }, nil
}

// NewPubSub returns a Pub/Sub client for project. It honours
// PUBSUB_EMULATOR_HOST, so the same code talks to the local stack's server.
func NewPubSub(ctx context.Context, project string) (*pubsub.Client, error) {
	return NewPubSubAt(ctx, project, "")
}

// NewPubSubAt is NewPubSub for a program whose configuration does not come
// from its own environment: with emulatorHost set it connects to that
// emulator (plaintext, no credentials), as the client does by itself for
// PUBSUB_EMULATOR_HOST; empty, it is NewPubSub.
func NewPubSubAt(ctx context.Context, project, emulatorHost string) (*pubsub.Client, error) {
	var opts []option.ClientOption
	if emulatorHost != "" {
		opts = append(opts, option.WithEndpoint(emulatorHost), option.WithoutAuthentication(),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	}
	c, err := pubsub.NewClient(ctx, project, opts...)
	if err != nil {
		return nil, fmt.Errorf("pubsub client: %w", err)
	}
	return c, nil
}

// NewLogger returns a Cloud Logging JSON logger writing to w (os.Stdout
// when nil) at the level named by LOG_LEVEL (debug, info, warn, error;
// default info), labelled with the function name.
func NewLogger(w io.Writer, env Env) *slog.Logger {
	if w == nil {
		w = os.Stdout
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(env.LogLevel)); err != nil || env.LogLevel == "" {
		level = slog.LevelInfo
	}
	return observability.NewLogger(w, &observability.HandlerOptions{
		ProjectID: env.Project,
		Level:     level,
		Labels:    map[string]string{observability.LabelFunction: env.Function},
	})
}

// setMaxConns applies n unless the URL set pool_max_conns itself or n is 0.
func setMaxConns(cfg *pgxpool.Config, n int32) {
	if n > 0 && !strings.Contains(cfg.ConnString(), "pool_max_conns") {
		cfg.MaxConns = n
	}
}
