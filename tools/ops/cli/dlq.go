package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"example.com/platform/shared/deadletter"
	dlarchive "example.com/platform/shared/deadletter/archive"
	"example.com/platform/shared/messaging"
	"example.com/platform/tools/ops/dlq"
	"example.com/platform/tools/ops/replay"
)

// DefaultListLimit is how many dead letters `dlq list` shows by default.
const DefaultListLimit = 1000

type filterFlags struct {
	subscription, typ, since, until string
	limit                           int
}

func (ff *filterFlags) register(f *flags, defaultLimit int) {
	f.StringVar(&ff.subscription, "subscription", "", "only dead letters of this subscription (id or full name)")
	f.StringVar(&ff.typ, "type", "", "only this CloudEvent type (ce-type)")
	f.StringVar(&ff.since, "since", "", "only dead-lettered at or after: RFC 3339 or a duration ago (24h, 7d)")
	f.StringVar(&ff.until, "until", "", "only dead-lettered before: RFC 3339 or a duration ago")
	f.IntVar(&ff.limit, "limit", defaultLimit, "at most this many, oldest first (0: no limit)")
}

func (ff *filterFlags) filter(f *flags, now time.Time) (dlq.Filter, error) {
	since, err := parseTime(ff.since, now)
	if err != nil {
		return dlq.Filter{}, f.usagef("--since: %v", err)
	}
	until, err := parseTime(ff.until, now)
	if err != nil {
		return dlq.Filter{}, f.usagef("--until: %v", err)
	}
	if !since.IsZero() && !until.IsZero() && !since.Before(until) {
		return dlq.Filter{}, f.usagef("--since must be before --until")
	}
	if ff.limit < 0 {
		return dlq.Filter{}, f.usagef("--limit must not be negative")
	}
	return dlq.Filter{Subscription: ff.subscription, Type: ff.typ, Since: since, Until: until, Limit: ff.limit}, nil
}

func (ff *filterFlags) empty() bool {
	return ff.subscription == "" && ff.typ == "" && ff.since == "" && ff.until == "" && ff.limit == 0
}

func (ff *filterFlags) audit(f dlq.Filter) map[string]any {
	m := map[string]any{}
	if f.Subscription != "" {
		m["subscription"] = f.Subscription
	}
	if f.Type != "" {
		m["type"] = f.Type
	}
	if !f.Since.IsZero() {
		m["since"] = f.Since.UTC().Format(time.RFC3339Nano)
	}
	if !f.Until.IsZero() {
		m["until"] = f.Until.UTC().Format(time.RFC3339Nano)
	}
	if f.Limit > 0 {
		m["limit"] = f.Limit
	}
	return m
}

// entryJSON is the --json form of a dead letter.
type entryJSON struct {
	MessageID        string            `json:"message_id"`
	EventID          string            `json:"event_id,omitempty"`
	Type             string            `json:"type,omitempty"`
	Topic            string            `json:"original_topic,omitempty"`
	Subscription     string            `json:"subscription,omitempty"`
	ReasonClass      string            `json:"reason_class,omitempty"`
	ReasonMessage    string            `json:"reason_message,omitempty"`
	DeliveryAttempts int64             `json:"delivery_attempts,omitempty"`
	PublishTime      *time.Time        `json:"publish_time,omitempty"`
	DeadLetteredAt   time.Time         `json:"dead_lettered_at"`
	ReceivedAt       *time.Time        `json:"received_at,omitempty"`
	Attributes       map[string]string `json:"attributes,omitempty"`
	Body             *string           `json:"body,omitempty"`
	BodyEncoding     string            `json:"body_encoding,omitempty"`
	// BodyOmitted is the reference that replaced a body too large to
	// dead-letter (Body then holds the reference document).
	BodyOmitted *deadletter.BodyReference `json:"body_omitted,omitempty"`
}

func toJSON(e dlq.Entry, withBody bool) entryJSON {
	class, msg := e.Reason()
	j := entryJSON{
		MessageID: e.MessageID, EventID: e.EventID(), Type: e.Type(), Topic: e.Topic(), Subscription: e.SourceSubscription(),
		ReasonClass: class, ReasonMessage: msg, DeliveryAttempts: e.Attempts(), DeadLetteredAt: e.DeadLetteredAt,
	}
	if !e.PublishTime.IsZero() {
		j.PublishTime = &e.PublishTime
	}
	if !e.ReceivedAt.IsZero() {
		j.ReceivedAt = &e.ReceivedAt
	}
	if withBody {
		j.Attributes = e.Attributes
		body, enc := textOrBase64(e.Body)
		j.Body, j.BodyEncoding = &body, enc
		if ref, omitted, err := e.Reference(); omitted && err == nil {
			j.BodyOmitted = &ref
		}
	}
	return j
}

// textOrBase64 is b as text when it is UTF-8 (encoding dlarchive.EncodingUTF8),
// else as base64 (dlarchive.EncodingBase64).
func textOrBase64(b []byte) (s, encoding string) {
	if !utf8.Valid(b) {
		return base64.StdEncoding.EncodeToString(b), dlarchive.EncodingBase64
	}
	return string(b), dlarchive.EncodingUTF8
}

// newTable is the tab-aligned writer of every table and "Key: value" list
// the commands print.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}

// fieldWriter returns the writer of "Key: value" lines to tw (a newTable).
func fieldWriter(tw io.Writer) func(k, v string) {
	return func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (c *Command) dlqList(ctx context.Context, args []string) error {
	f := c.newFlags("dlq list", "[filters] [--json]", "Lists dead letters (oldest first) and counts them by subscription and reason.")
	var ff filterFlags
	ff.register(f, DefaultListLimit)
	asJSON := f.Bool("json", false, "print JSON")
	if err := f.parseNone(args); err != nil {
		return err
	}
	filter, err := ff.filter(f, c.Clock.Now())
	if err != nil {
		return err
	}
	archive, closeArchive, err := f.openArchive(ctx)
	if err != nil {
		return err
	}
	defer closeArchive()
	entries, err := archive.List(ctx, filter)
	if err != nil {
		return err
	}
	groups := dlq.Groups(entries)
	truncated := filter.Limit > 0 && len(entries) == filter.Limit
	if *asJSON {
		out := struct {
			Entries   []entryJSON `json:"entries"`
			Groups    []dlq.Group `json:"groups"`
			Truncated bool        `json:"truncated"`
		}{Entries: []entryJSON{}, Groups: groups, Truncated: truncated}
		for _, e := range entries {
			out.Entries = append(out.Entries, toJSON(e, false))
		}
		return writeJSON(c.Stdout, out)
	}
	if len(entries) == 0 {
		fmt.Fprintf(c.Stdout, "no dead letters in %s match\n", archive)
		return nil
	}
	tw := newTable(c.Stdout)
	fmt.Fprintln(tw, "MESSAGE ID\tDEAD-LETTERED\tSUBSCRIPTION\tTYPE\tEVENT ID\tATTEMPTS\tREASON")
	for _, e := range entries {
		class, msg := e.Reason()
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.MessageID, e.DeadLetteredAt.UTC().Format(time.RFC3339),
			dash(e.SourceSubscription()), dash(e.Type()), dash(e.EventID()), attempts(e.Attempts()), reason(class, msg, 80))
	}
	tw.Flush()
	fmt.Fprintf(c.Stdout, "\nBy subscription and reason (%d dead letters", len(entries))
	if truncated {
		fmt.Fprintf(c.Stdout, ", the first %d only: raise --limit to count more", filter.Limit)
	}
	fmt.Fprintln(c.Stdout, "):")
	tw = newTable(c.Stdout)
	fmt.Fprintln(tw, "COUNT\tSUBSCRIPTION\tFIRST\tLAST\tREASON")
	for _, g := range groups {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", g.Count, dash(g.Subscription), g.First.UTC().Format(time.RFC3339),
			g.Last.UTC().Format(time.RFC3339), reason(g.ReasonClass, g.ReasonMessage, 100))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func attempts(n int64) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprint(n)
}

func reason(class, msg string, n int) string {
	s := dash(class)
	if msg != "" {
		s += ": " + msg
	}
	return short(s, n)
}

// short puts s on one line, cut to about n bytes.
func short(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n] + "…"
	}
	return s
}

func (c *Command) dlqShow(ctx context.Context, args []string) error {
	f := c.newFlags("dlq show", "ID [--json]", "Shows one dead letter in full: reason, attributes and the body decoded.")
	asJSON := f.Bool("json", false, "print JSON")
	id, err := f.parseOne(args, "message ID")
	if err != nil {
		return err
	}
	archive, closeArchive, err := f.openArchive(ctx)
	if err != nil {
		return err
	}
	defer closeArchive()
	e, err := archive.Get(ctx, id)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(c.Stdout, toJSON(e, true))
	}
	class, msg := e.Reason()
	tw := newTable(c.Stdout)
	row := fieldWriter(tw)
	row("Message ID", e.MessageID)
	row("Event ID", dash(e.EventID()))
	row("Type", dash(e.Type()))
	row("Original topic", dash(e.Topic()))
	row("Subscription", dash(e.SourceSubscription()))
	row("Reason class", dash(class))
	row("Reason", dash(msg))
	row("Delivery attempts", attempts(e.Attempts()))
	if !e.PublishTime.IsZero() {
		row("Published", e.PublishTime.UTC().Format(time.RFC3339Nano))
	}
	row("Dead-lettered", e.DeadLetteredAt.UTC().Format(time.RFC3339Nano))
	if !e.ReceivedAt.IsZero() {
		row("Archived", e.ReceivedAt.UTC().Format(time.RFC3339Nano))
	}
	tw.Flush()
	fmt.Fprintln(c.Stdout, "\nAttributes:")
	tw = newTable(c.Stdout)
	for _, k := range slices.Sorted(maps.Keys(e.Attributes)) {
		fmt.Fprintf(tw, "  %s\t%s\n", k, e.Attributes[k])
	}
	tw.Flush()
	if ref, omitted, rerr := e.Reference(); omitted {
		if rerr != nil {
			fmt.Fprintf(c.Stdout, "\nBody omitted (too large to dead-letter); the reference does not decode: %v\n%s\n", rerr, renderBody(e.Body))
			return nil
		}
		head := "(not UTF-8; base64) " + base64.StdEncoding.EncodeToString(ref.Head)
		if utf8.Valid(ref.Head) {
			head = string(ref.Head)
		}
		fmt.Fprintf(c.Stdout, "\nBody omitted: it was too large to dead-letter (%s); this dead letter cannot be replayed.\n", ref.Omitted)
		tw = newTable(c.Stdout)
		fmt.Fprintf(tw, "  Size\t%d bytes\n  SHA-256\t%s\n", ref.Size, ref.SHA256)
		tw.Flush()
		fmt.Fprintf(c.Stdout, "First %d bytes:\n%s\n", len(ref.Head), head)
		return nil
	}
	fmt.Fprintf(c.Stdout, "\nBody (%d bytes, archived as %s):\n%s\n", len(e.Body), dash(e.BodyEncoding), renderBody(e.Body))
	return nil
}

// renderBody shows JSON indented, other text as is and binary as base64.
func renderBody(b []byte) string {
	if !utf8.Valid(b) {
		return "(not UTF-8; base64) " + base64.StdEncoding.EncodeToString(b)
	}
	var out bytes.Buffer
	if json.Valid(b) && json.Indent(&out, b, "", "  ") == nil {
		return out.String()
	}
	return string(b)
}

func (c *Command) dlqReplay(ctx context.Context, args []string) error {
	f := c.newFlags("dlq replay", "[filters] [--rate 10/s] [--dry-run] [--force] [--all]",
		"Republishes dead letters to their original topics with the original body and ce-* attributes\n"+
			"(same CloudEvent id, so idempotency holds), replay-* attributes added, dlq-* reason attributes\n"+
			"dropped. Every run is audited in PostgreSQL (dlq_replays); a dead letter replayed before is\n"+
			"refused unless --force.")
	var ff filterFlags
	ff.register(f, 0)
	rateFlag := f.String("rate", "10/s", "publish rate limit: N/s, N/m or N/h (0: unlimited)")
	dryRun := f.Bool("dry-run", false, "print what would be replayed; publish and record nothing")
	force := f.Bool("force", false, "replay dead letters that were replayed before")
	all := f.Bool("all", false, "allow a replay without any filter (every archived dead letter)")
	by := f.String("by", "", "who runs the replay, for the audit (default $EVENTCTL_USER or user@host)")
	every := f.Int("progress-every", 100, "print progress to stderr every N messages (and at least every second)")
	if err := f.parseNone(args); err != nil {
		return err
	}
	perSecond, err := replay.ParseRate(*rateFlag)
	if err != nil {
		return f.usagef("--rate: %v", err)
	}
	if *every <= 0 {
		return f.usagef("--progress-every must be positive")
	}
	if ff.empty() && !*all {
		return f.usagef("no filter given: pass --subscription, --type, --since, --until or --limit, or --all to replay every dead letter")
	}
	filter, err := ff.filter(f, c.Clock.Now())
	if err != nil {
		return err
	}
	who := *by
	if who == "" {
		who = c.who()
	}
	// Resolve the whole configuration before connecting anywhere.
	if _, _, err := f.database(); err != nil && !*dryRun {
		return err
	}
	if !*dryRun {
		if _, err := f.projectID(); err != nil {
			return err
		}
	}
	archive, closeArchive, err := f.openArchive(ctx)
	if err != nil {
		return err
	}
	defer closeArchive()

	r := &replay.Replayer{Archive: archive}
	if _, _, err := f.database(); err == nil {
		pool, closeDB, err := f.openDB(ctx)
		if err != nil {
			return err
		}
		defer closeDB()
		if !*dryRun {
			if err := replay.Migrate(ctx, pool); err != nil {
				return err
			}
		}
		r.Audit = &replay.Audit{Pool: pool}
	} else {
		fmt.Fprintln(c.Stderr, "eventctl: no database configured: the dry run cannot tell which dead letters were replayed before")
	}
	if f.c.env(f.project, "GOOGLE_CLOUD_PROJECT") != "" {
		client, project, err := f.openPubSub(ctx, !*dryRun)
		if err != nil {
			return err
		}
		defer client.Close()
		r.Topics = &replay.PubSubAdmin{Client: client, Project: project}
		if !*dryRun {
			pub := messaging.NewPubSub(client)
			defer pub.Stop()
			r.Publisher = pub
		}
	}
	rep, err := r.Run(ctx, replay.Options{
		Filter: filter, DryRun: *dryRun, Force: *force, By: who,
		Limiter: c.NewLimiter(perSecond, c.Clock), Clock: c.Clock,
		Progress: c.Stderr, ProgressEvery: *every, AuditFilters: ff.audit(filter),
	})
	c.printReplay(rep)
	if err != nil {
		return err
	}
	if rep.Failed > 0 || (!rep.DryRun && rep.Refused > 0) {
		return errIncomplete
	}
	return nil
}

func (c *Command) printReplay(rep replay.Report) {
	for _, it := range rep.Items {
		e := it.Entry
		switch it.Outcome {
		case replay.Published:
			fmt.Fprintf(c.Stdout, "published %s (event %s) to %s as message %s, replay-count %s\n",
				e.MessageID, dash(e.EventID()), it.Topic, it.NewMessageID, it.Message.Attributes[replay.AttrReplayCount])
		case replay.WouldPublish:
			fmt.Fprintf(c.Stdout, "would publish %s (event %s, %s) to %s, replay-count %s\n",
				e.MessageID, dash(e.EventID()), dash(e.Type()), it.Topic, it.Message.Attributes[replay.AttrReplayCount])
		case replay.Refused, replay.WouldRefuse:
			verb := "refused"
			if it.Outcome == replay.WouldRefuse {
				verb = "would refuse"
			}
			var p replay.Prior
			if len(it.Priors) > 0 {
				p = it.Priors[0]
			}
			fmt.Fprintf(c.Stdout, "%s %s (event %s): already replayed (%s by %s at %s, replay %s); use --force to replay it again\n",
				verb, e.MessageID, dash(e.EventID()), p.Result, p.By, p.At.UTC().Format(time.RFC3339), p.ReplayID)
		case replay.Failed:
			fmt.Fprintf(c.Stdout, "failed %s (event %s): %v\n", e.MessageID, dash(e.EventID()), it.Err)
		}
	}
	if rep.DryRun {
		fmt.Fprintf(c.Stdout, "dry run: %d selected, %d would be published, %d would be refused, %d unresolved; nothing was published or recorded\n",
			len(rep.Items), len(rep.Items)-rep.Refused-rep.Failed, rep.Refused, rep.Failed)
		return
	}
	if rep.ReplayID == "" {
		return
	}
	fmt.Fprintf(c.Stdout, "replay %s: %d selected, %d published, %d failed, %d refused\n",
		rep.ReplayID, len(rep.Items), rep.Published, rep.Failed, rep.Refused)
}
