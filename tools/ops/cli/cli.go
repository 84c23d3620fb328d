// Package cli is the operator command eventctl: dead-letter listing and
// replay, parked ordering keys (list, show, replay, discard), idempotency
// record inspection and purge, outbox status, flush and stuck rows.
// The same code runs against the local stack and Google Cloud; only the
// configuration differs (see Usage and tools/cmd/eventctl/README.md).
//
// Exit codes: 0 success, 1 a backend failed or the operation did not fully
// succeed (the message says which backend and where), 2 a usage error
// (bad flag, missing argument or configuration). Nothing is deleted
// without being asked: purge needs --yes or an interactive confirmation.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"time"

	"golang.org/x/term"

	"example.com/platform/tools/ops/replay"
)

// Exit codes.
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
)

// DefaultTimeout bounds connecting to (and each call of) a backend.
const DefaultTimeout = 15 * time.Second

// Command is one invocation's environment. The zero value is not usable;
// Main fills it from the process.
type Command struct {
	Stdout, Stderr io.Writer
	// Stdin answers confirmation prompts.
	Stdin io.Reader
	// Getenv reads configuration (os.Getenv in Main).
	Getenv func(string) string
	// Interactive reports whether a person can answer a prompt on Stdin.
	Interactive func() bool
	// Clock times replays (rate limit, progress); nil means the system clock.
	Clock replay.Clock
	// NewLimiter builds the replay rate limiter; nil means replay.NewLimiter.
	NewLimiter func(perSecond float64, clock replay.Clock) replay.Limiter
}

// Main runs eventctl with args (without the program name), writing to
// stdout and stderr, configured from the process environment, and returns
// the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	return MainContext(context.Background(), args, stdout, stderr)
}

// MainContext is Main with a context (the program cancels it on SIGINT).
func MainContext(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := &Command{Stdout: stdout, Stderr: stderr, Stdin: os.Stdin, Getenv: os.Getenv, Interactive: stdinIsTerminal}
	return c.Run(ctx, args)
}

// stdinIsTerminal reports whether stdin is a terminal (not /dev/null, a
// pipe or a file, as in CI and scripts).
func stdinIsTerminal() bool { return term.IsTerminal(int(os.Stdin.Fd())) }

// usageError is a bad invocation: exit 2 with the usage of the command.
type usageError struct {
	msg   string
	usage func()
}

func (e *usageError) Error() string { return e.msg }

func usagef(usage func(), format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...), usage: usage}
}

// errIncomplete is a non-error outcome that must still exit 1 (a replay with
// failed messages); its message has been printed already.
var errIncomplete = errors.New("incomplete")

const topUsage = `eventctl: operate the event platform (dead letters, parked keys, idempotency, outbox).

Usage:
  eventctl dlq list    [filters] [--json]        what is dead-lettered, why, how often
  eventctl dlq show    ID [--json]               one dead letter in full
  eventctl dlq replay  [filters] [--rate 10/s] [--dry-run] [--force] [--all]
                                                 republish to the original topics
  eventctl idempotency inspect CONSUMER:ID [--json]
  eventctl idempotency purge --older-than 720h [--yes]
  eventctl outbox status [--json]                pending rows per topic, oldest age
  eventctl outbox flush  [--limit N]             publish pending rows now
  eventctl outbox stuck  [--older-than 15m] [--json]
                                                 rows that block their key (failing, parked)
  eventctl outbox retry  ID                      make a row due now (and unpark it)
  eventctl outbox park   ID                      stop retrying a row; its key stays blocked
  eventctl parked list   [--subscription S] [--consumer C] [--json]
                                                 ordering keys parked behind a dead letter
  eventctl parked show   SUBSCRIPTION KEY [--json]
                                                 a parked key's head and parked events
  eventctl parked replay SUBSCRIPTION KEY        replay the head; the parked events follow in order
  eventctl parked discard SUBSCRIPTION KEY --reason TEXT
                                                 give up the head; apply the parked events

Filters: --subscription S  --type T  --since RFC3339|duration  --until RFC3339|duration  --limit N

Configuration (flags win over the environment):
  --database-url / DATABASE_URL, or DB_INSTANCE_CONNECTION_NAME, DB_NAME, DB_USER
                   (Cloud SQL with IAM auth; DB_IAM_AUTH, DB_IP_TYPE)
  --project / GOOGLE_CLOUD_PROJECT (Pub/Sub; PUBSUB_EMULATOR_HOST for the local stack)
  --archive / EVENTCTL_ARCHIVE: jsonl:PATH, bigquery, or bigquery:PROJECT.DATASET[.TABLE]
                   (bigquery uses BIGQUERY_PROJECT, BIGQUERY_DATASET, BIGQUERY_EMULATOR_HOST;
                   the default is bigquery when BIGQUERY_DATASET is set)
  --timeout        bound on reaching each backend (default 15s)

Run "eventctl COMMAND SUBCOMMAND -h" for the flags of a command.
`

// Run executes args and returns the exit code.
func (c *Command) Run(ctx context.Context, args []string) int {
	if c.Getenv == nil {
		c.Getenv = os.Getenv
	}
	if c.Clock == nil {
		c.Clock = replay.SystemClock{}
	}
	if c.NewLimiter == nil {
		c.NewLimiter = replay.NewLimiter
	}
	if c.Interactive == nil {
		c.Interactive = func() bool { return false }
	}
	err := c.dispatch(ctx, args)
	var ue *usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.As(err, &ue):
		fmt.Fprintf(c.Stderr, "eventctl: %s\n\n", ue.msg)
		if ue.usage != nil {
			ue.usage()
		} else {
			fmt.Fprint(c.Stderr, topUsage)
		}
		return ExitUsage
	case errors.Is(err, errIncomplete):
		return ExitError
	default:
		fmt.Fprintf(c.Stderr, "eventctl: %v\n", err)
		return ExitError
	}
}

func (c *Command) dispatch(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usagef(nil, "missing command")
	}
	if args[0] == "help" || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		fmt.Fprint(c.Stdout, topUsage)
		return nil
	}
	cmd := args[0]
	type handler func(context.Context, []string) error
	table := map[string]map[string]handler{
		"dlq":         {"list": c.dlqList, "show": c.dlqShow, "replay": c.dlqReplay},
		"idempotency": {"inspect": c.idemInspect, "purge": c.idemPurge},
		"outbox":      {"status": c.outboxStatus, "flush": c.outboxFlush, "stuck": c.outboxStuck, "retry": c.outboxRetry, "park": c.outboxPark},
		"parked":      {"list": c.parkedList, "show": c.parkedShow, "replay": c.parkedReplay, "discard": c.parkedDiscard},
	}
	subs, ok := table[cmd]
	if !ok {
		return usagef(nil, "unknown command %q", cmd)
	}
	if len(args) < 2 {
		return usagef(nil, "missing subcommand of %q", cmd)
	}
	sub, rest := args[1], args[2:]
	h, ok := subs[sub]
	if !ok {
		return usagef(nil, "unknown subcommand %q of %s", sub, cmd)
	}
	return h(ctx, rest)
}

// flags is a subcommand's flag set with the common configuration flags.
type flags struct {
	*flag.FlagSet
	name    string
	args    string // positional arguments, for usage
	c       *Command
	dbURL   string
	project string
	archive string
	timeout time.Duration

	printUsage func(io.Writer)
}

func (c *Command) newFlags(name, args, summary string) *flags {
	f := &flags{FlagSet: flag.NewFlagSet("eventctl "+name, flag.ContinueOnError), name: name, args: args, c: c}
	// Errors are printed by Run, once, with the usage.
	f.SetOutput(io.Discard)
	f.StringVar(&f.dbURL, "database-url", "", "PostgreSQL URL (default $DATABASE_URL, else Cloud SQL from DB_* variables)")
	f.StringVar(&f.project, "project", "", "Google Cloud project of Pub/Sub (default $GOOGLE_CLOUD_PROJECT)")
	f.StringVar(&f.archive, "archive", "", "dead-letter archive: jsonl:PATH, bigquery or bigquery:PROJECT.DATASET[.TABLE] (default $EVENTCTL_ARCHIVE)")
	f.DurationVar(&f.timeout, "timeout", DefaultTimeout, "bound on reaching each backend")
	// Package flag calls Usage on -h and on errors; parse prints instead.
	f.Usage = func() {}
	f.printUsage = func(w io.Writer) {
		fmt.Fprintf(w, "Usage: eventctl %s %s\n\n%s\n\nFlags:\n", name, args, summary)
		f.SetOutput(w)
		f.PrintDefaults()
		f.SetOutput(io.Discard)
	}
	return f
}

// parse parses flags that may come before, between or after positional
// arguments and returns the positional ones.
func (f *flags) parse(args []string) ([]string, error) {
	var pos []string
	for {
		if err := f.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				f.printUsage(f.c.Stdout)
				return nil, err
			}
			return nil, f.usagef("%v", err)
		}
		args = f.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if f.timeout <= 0 {
		return nil, f.usagef("--timeout must be positive")
	}
	return pos, nil
}

// parseNone parses args, which must hold flags only.
func (f *flags) parseNone(args []string) error {
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return f.usagef("unexpected argument %q", pos[0])
	}
	return nil
}

// parseOne parses args, which must hold exactly one positional argument
// (what, for the usage error), and returns it.
func (f *flags) parseOne(args []string, what string) (string, error) {
	pos, err := f.parse(args)
	if err != nil {
		return "", err
	}
	if len(pos) != 1 {
		return "", f.usagef("%s takes exactly one %s", f.name, what)
	}
	return pos[0], nil
}

func (f *flags) usagef(format string, args ...any) error {
	return usagef(func() { f.printUsage(f.c.Stderr) }, format, args...)
}

func (c *Command) env(flagValue, name string) string {
	if flagValue != "" {
		return flagValue
	}
	return strings.TrimSpace(c.Getenv(name))
}

// who names the operator for the audit: $EVENTCTL_USER, else user@host.
func (c *Command) who() string {
	if v := c.Getenv("EVENTCTL_USER"); v != "" {
		return v
	}
	name := c.Getenv("USER")
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if name == "" {
		name = "unknown"
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		name += "@" + h
	}
	return name
}

// parseTime reads an RFC 3339 time, or a duration back from now ("24h",
// "7d", "90m").
func parseTime(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := parseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("invalid time %q: want RFC 3339 (2030-01-02T15:04:05Z) or a duration ago (24h, 7d)", s)
}

// parseDuration is time.ParseDuration that also takes whole days ("7d").
func parseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		var days int
		if _, err := fmt.Sscanf(n, "%d", &days); err == nil && fmt.Sprint(days) == n {
			return time.Duration(days) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	return d, nil
}
