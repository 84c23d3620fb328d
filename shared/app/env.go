// Package app wires a function or service to its environment: it reads and
// validates configuration from environment variables (reporting everything
// missing in one message), opens PostgreSQL (DATABASE_URL locally, Cloud SQL
// with IAM authentication through cloudsqlconn in production), connects the
// Pub/Sub client, and builds the Cloud Logging logger.
//
// The variable names are the ones infra/modules/event-function sets; see
// docs/infrastructure.md.
package app

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Common environment variables.
const (
	EnvFunction        = "FUNCTION_NAME"
	EnvProject         = "GOOGLE_CLOUD_PROJECT"
	EnvDeadLetterTopic = "DEAD_LETTER_TOPIC"
	EnvDatabaseURL     = "DATABASE_URL"
	EnvDBInstance      = "DB_INSTANCE_CONNECTION_NAME"
	EnvDBName          = "DB_NAME"
	EnvDBUser          = "DB_USER"
	EnvDBIAMAuth       = "DB_IAM_AUTH"
	EnvDBIPType        = "DB_IP_TYPE"
	EnvDBMaxConns      = "DB_MAX_CONNS"
	// EnvDBMigrate, when true, makes a function apply its migrations at
	// start (the local stack's migrate step and tests); otherwise it only
	// checks the schema is at the version its code expects. Terraform
	// never sets it: in production the migration job owns the schema.
	EnvDBMigrate = "DB_MIGRATE"
	EnvLogLevel  = "LOG_LEVEL"
	EnvLease     = "IDEMPOTENCY_LEASE"
)

// ErrConfig wraps every configuration error.
var ErrConfig = errors.New("configuration")

// Needs says which parts of the environment a program requires.
type Needs struct {
	Database bool
	PubSub   bool
	// Migrations are the program's own schemas, after the kernel's: Open
	// applies them with the kernel's (Database.Migrate) or checks them
	// with the kernel's, in one query.
	Migrations []Migration
	// Vars are program-specific variables.
	Vars []Var
}

// Var is a program-specific environment variable.
type Var struct {
	Name     string
	Required bool
	// RequiredIf, when set, makes the variable required when it returns
	// true; it reads the environment through getenv (for a variable that
	// another one's value makes necessary).
	RequiredIf func(getenv func(string) string) bool
	Default    string
	// Check validates a present value; its error is reported with the name.
	Check func(string) error
}

// Env is the parsed common configuration.
type Env struct {
	Function        string
	Project         string
	DeadLetterTopic string
	Database        Database
	LogLevel        string
	// Lease is the lease of lease-mode idempotency (IDEMPOTENCY_LEASE, a
	// Go duration, default LeaseDuration). A delivery whose holder died
	// is taken over once the lease expires.
	Lease time.Duration
	// Vars holds the program-specific values (defaults applied).
	Vars map[string]string
}

// Database says how to reach PostgreSQL. URL wins when set.
type Database struct {
	URL      string
	Instance string // project:region:instance
	Name     string
	User     string
	IAMAuth  bool
	IPType   string // private (default) or public
	// Migrate says whether Open and Build apply migrations (DB_MIGRATE,
	// default false: they check the schema is migrated and fail with
	// postgres.ErrNotMigrated otherwise). Only the schema's owner can
	// migrate.
	Migrate bool
	// MaxConns caps the pool (DB_MAX_CONNS, default DefaultMaxConns).
	// Keep instances x MaxConns below the server's max_connections.
	MaxConns int32
}

// DefaultMaxConns is the pool size when DB_MAX_CONNS is not set: enough for
// a function instance serving tens of concurrent requests, most of which
// wait on something other than the database.
const DefaultMaxConns = 10

// LoadEnv reads the configuration from getenv (os.Getenv when nil). It
// returns one error listing every missing or invalid variable.
func LoadEnv(getenv func(string) string, needs Needs) (Env, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	var missing, invalid []string
	req := func(name string) string {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			missing = append(missing, name)
		}
		return v
	}
	env := Env{
		Function: req(EnvFunction),
		LogLevel: getenv(EnvLogLevel),
		Vars:     map[string]string{},
	}
	if needs.PubSub {
		env.Project = req(EnvProject)
	} else {
		env.Project = getenv(EnvProject)
	}
	env.Lease = LeaseDuration
	if v := getenv(EnvLease); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			invalid = append(invalid, fmt.Sprintf("%s=%q (want a positive duration such as 2m)", EnvLease, v))
		}
		env.Lease = d
	}
	env.DeadLetterTopic = getenv(EnvDeadLetterTopic)
	if env.DeadLetterTopic == "" && env.Function != "" {
		env.DeadLetterTopic = env.Function + ".dlq"
	}
	if needs.Database {
		db := Database{
			URL:      getenv(EnvDatabaseURL),
			Instance: getenv(EnvDBInstance),
			Name:     getenv(EnvDBName),
			User:     getenv(EnvDBUser),
			IPType:   strings.ToLower(getenv(EnvDBIPType)),
		}
		if db.IPType == "" {
			db.IPType = "private"
		}
		if db.IPType != "private" && db.IPType != "public" && db.IPType != "psc" {
			invalid = append(invalid, fmt.Sprintf("%s=%q (want private, public or psc)", EnvDBIPType, db.IPType))
		}
		db.MaxConns = DefaultMaxConns
		if v := getenv(EnvDBMaxConns); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1000 {
				invalid = append(invalid, fmt.Sprintf("%s=%q (want 1..1000)", EnvDBMaxConns, v))
			}
			db.MaxConns = int32(n)
		}
		if v := getenv(EnvDBMigrate); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				invalid = append(invalid, fmt.Sprintf("%s=%q (want true or false)", EnvDBMigrate, v))
			}
			db.Migrate = b
		}
		if v := getenv(EnvDBIAMAuth); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				invalid = append(invalid, fmt.Sprintf("%s=%q (want true or false)", EnvDBIAMAuth, v))
			}
			db.IAMAuth = b
		} else {
			db.IAMAuth = true
		}
		if db.URL == "" {
			for _, p := range []struct{ name, v string }{{EnvDBInstance, db.Instance}, {EnvDBName, db.Name}, {EnvDBUser, db.User}} {
				if p.v == "" {
					missing = append(missing, p.name+" (or "+EnvDatabaseURL+")")
				}
			}
		}
		env.Database = db
	}
	for _, v := range needs.Vars {
		val := strings.TrimSpace(getenv(v.Name))
		if val == "" {
			if v.Required || (v.RequiredIf != nil && v.RequiredIf(getenv)) {
				missing = append(missing, v.Name)
				continue
			}
			val = v.Default
		}
		if val != "" && v.Check != nil {
			if err := v.Check(val); err != nil {
				invalid = append(invalid, fmt.Sprintf("%s=%q: %v", v.Name, val, err))
				continue
			}
		}
		env.Vars[v.Name] = val
	}
	if len(missing)+len(invalid) == 0 {
		return env, nil
	}
	sort.Strings(missing)
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, "missing "+strings.Join(missing, ", "))
	}
	if len(invalid) > 0 {
		parts = append(parts, "invalid "+strings.Join(invalid, "; "))
	}
	return env, fmt.Errorf("%w: %s", ErrConfig, strings.Join(parts, "; "))
}

// PositiveDuration is a Var.Check for a positive Go duration such as 50s.
func PositiveDuration(v string) error {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return errors.New("want a positive duration such as 50s")
	}
	return nil
}

// Var returns a program-specific value.
func (e Env) Var(name string) string { return e.Vars[name] }
