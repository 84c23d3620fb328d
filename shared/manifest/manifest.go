// Package manifest reads and validates function manifests
// (functions/<name>/function.yaml) and the topic catalogue (topics.yaml).
//
// The manifest is the one description of a deployable handler: the local
// stack, CODEOWNERS generation and Terraform (through yamldecode) all read
// it. It is plain YAML with no anchors or tags that Terraform cannot decode.
// Load rejects unknown keys; Validate checks ranges and cross-references
// and reports every problem at once, each prefixed with the field's path.
package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Kinds of deployable.
const (
	KindCloudEvent = "cloudevent" // a Cloud Functions Gen2 CloudEvent function fed by push subscriptions
	KindHTTP       = "http"       // an HTTP service on Cloud Run
)

// Idempotency modes (see DESIGN.md, "Handler contract").
const (
	IdempotencyTransactional = "transactional"
	IdempotencyLease         = "lease"
	IdempotencyNone          = "none"
)

// Limits enforced by Validate. They mirror what Pub/Sub and Cloud Run
// functions accept, so an invalid manifest fails here, not at deploy time.
const (
	MinDeliveryAttempts = 5
	MaxDeliveryAttempts = 100
	MaxBackoffSeconds   = 600
	MinAckDeadline      = 10
	MaxAckDeadline      = 600
	MaxEventTimeout     = 540
	MaxHTTPTimeout      = 3600
	MaxConcurrency      = 1000
	// AfterBudgetSeconds is the time a function may spend after its
	// handler's deadline on steps that must not be lost (recording a
	// success, dead-lettering, publishing after commit): the default of
	// shared/handler's Config.AfterBudget. Validate keeps handler_timeout +
	// AfterBudgetSeconds below every ack deadline.
	AfterBudgetSeconds = 5
)

// Manifest describes one function folder.
type Manifest struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	Owner       Owner  `yaml:"owner"`
	Kind        string `yaml:"kind"`
	EntryPoint  string `yaml:"entry_point"`
	Idempotency string `yaml:"idempotency"`
	// Database grants Cloud SQL client and an IAM database user.
	Database bool `yaml:"database"`
	// Tables are the grants of the function's database role (needs
	// database: true): tools/cmd/migrate grants exactly these, plus the
	// kernel tables every database function uses (KernelTables). The
	// function's role owns nothing; the migrator owns every table.
	Tables Tables `yaml:"tables"`
	// BigQuery grants write access on the analytics dataset.
	BigQuery bool `yaml:"bigquery"`
	// Consumes lists one push subscription per topic.
	Consumes []Subscription `yaml:"consumes"`
	// ConsumesDeadLetters, when set, subscribes the function to the
	// dead-letter topic of every other function with these settings.
	ConsumesDeadLetters *Delivery `yaml:"consumes_dead_letters"`
	// Publishes lists the topics the function publishes to; PublishesAll
	// ("*") alone means every topic of the catalogue (the outbox relay).
	Publishes []string `yaml:"publishes"`
	// Internal marks an HTTP service that only its own Schedules call:
	// no invokers, no load balancer.
	Internal bool `yaml:"internal"`
	// Schedules are Cloud Scheduler jobs calling an HTTP service.
	Schedules []Schedule           `yaml:"schedules"`
	Resources Resources            `yaml:"resources"`
	Env       map[string]string    `yaml:"env"`
	SecretEnv map[string]SecretRef `yaml:"secret_env"`

	// Path is the file the manifest was read from (not part of the YAML).
	Path string `yaml:"-"`
}

// Schedule is one Cloud Scheduler job that calls an HTTP service with an
// OIDC token of an identity allowed to invoke only that service.
type Schedule struct {
	// Name is the job's suffix: lowercase letters, digits and dashes.
	Name string `yaml:"name"`
	// Path is the path it POSTs to.
	Path string `yaml:"path"`
	// Cron is a five-field cron expression, in UTC.
	Cron string `yaml:"cron"`
}

// PublishesAll, alone in publishes, means every topic of the catalogue.
const PublishesAll = "*"

// PublishedTopics is what m publishes to: its publishes list, or every
// topic of cat for PublishesAll.
func (m *Manifest) PublishedTopics(cat *Catalogue) []string {
	if slices.Equal(m.Publishes, []string{PublishesAll}) {
		return slices.Sorted(maps.Keys(cat.Topics))
	}
	return m.Publishes
}

// Tables lists the tables a function's database role may use, by name
// (schema public).
type Tables struct {
	// Write tables get SELECT, INSERT, UPDATE and DELETE (and USAGE on
	// their sequences).
	Write []string `yaml:"write"`
	// Read tables get SELECT.
	Read []string `yaml:"read"`
}

// KernelTables are granted (SELECT, INSERT, UPDATE, DELETE, and their
// sequences) to every function with database: true: the idempotency
// records, the outbox and the parked keys (shared/parking). A manifest
// does not list them.
var KernelTables = []string{"processed_events", "outbox", "parked_keys", "parked_events", "parked_releases"}

// tableRE is a table name a manifest may grant: a plain, unquoted
// PostgreSQL identifier.
var tableRE = bounded(`^[a-z_][a-z0-9_]*$`, 1, 63)

// Owner is the team that owns a function.
type Owner struct {
	Team       string   `yaml:"team"`
	Codeowners []string `yaml:"codeowners"`
}

// Delivery holds the push-subscription settings shared by every consumer.
// Durations are whole seconds with an "s" suffix ("600s"), the form Pub/Sub
// and Terraform use.
type Delivery struct {
	Ordering            bool   `yaml:"ordering"`
	Filter              string `yaml:"filter"`
	MaxDeliveryAttempts int    `yaml:"max_delivery_attempts"`
	MinBackoff          string `yaml:"min_backoff"`
	MaxBackoff          string `yaml:"max_backoff"`
	AckDeadline         string `yaml:"ack_deadline"`
}

// Subscription is one consumed topic.
type Subscription struct {
	Topic    string `yaml:"topic"`
	Delivery `yaml:",inline"`
}

// Resources are the function's scaling and sizing.
type Resources struct {
	Memory       string `yaml:"memory"`
	CPU          string `yaml:"cpu"`
	Concurrency  int    `yaml:"concurrency"`
	MinInstances int    `yaml:"min_instances"`
	MaxInstances int    `yaml:"max_instances"`
	Timeout      string `yaml:"timeout"`
	// HandlerTimeout bounds the handling of one delivery (the handler's
	// Config.Timeout); required for cloudevent functions. With the work
	// after it (AfterBudgetSeconds) it must answer before the
	// subscriptions' ack deadlines, or Pub/Sub redelivers a message that
	// is still being handled.
	HandlerTimeout string `yaml:"handler_timeout"`
}

// SecretRef names a Secret Manager secret exposed as an environment variable.
type SecretRef struct {
	Secret  string `yaml:"secret"`
	Version string `yaml:"version"`
}

// Topic is one entry of the topic catalogue.
type Topic struct {
	Description string   `yaml:"description"`
	Owner       string   `yaml:"owner"`
	EventTypes  []string `yaml:"event_types"`
	Retention   string   `yaml:"retention"`
}

// Catalogue is topics.yaml.
type Catalogue struct {
	Topics map[string]Topic `yaml:"topics"`
}

// Repo is everything the manifests of a repository describe.
type Repo struct {
	Root      string
	Topics    Catalogue
	Functions []*Manifest // sorted by name
}

// Sentinel errors; every validation problem wraps ErrInvalid.
var (
	ErrInvalid      = errors.New("invalid manifest")
	ErrUnknownTopic = errors.New("unknown topic")
)

var (
	nameRE      = bounded(`^[a-z][a-z0-9-]*[a-z0-9]$`, 3, 30)
	topicRE     = bounded(`^[a-zA-Z][a-zA-Z0-9._~+%-]*$`, 3, 255)
	identRE     = regexp.MustCompile(`^[A-Z][A-Za-z0-9_]*$`)
	envRE       = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)
	secondsRE   = regexp.MustCompile(`^([0-9]+)s$`)
	scheduleRE  = bounded(`^[a-z][a-z0-9-]*$`, 1, 41)
	memoryRE    = regexp.MustCompile(`^([0-9]+)(Mi|Gi)$`)
	secretRE    = bounded(`^[A-Za-z0-9_-]+$`, 1, 255)
	codeownerRE = regexp.MustCompile(`^@[A-Za-z0-9-]+(/[A-Za-z0-9._-]+)?$|^[^@\s]+@[^@\s]+$`)
	reservedEnv = []string{"PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION", "FUNCTION_TARGET", "FUNCTION_SIGNATURE_TYPE"}
)

// boundedRE is a name rule: a pattern of ASCII characters and a length
// in bytes. The length is checked apart from the pattern because a
// counted repetition ({2,254}) compiles to one copy of its class per
// count: written that way, this package's patterns took 0.7 ms of every
// function's start (GODEBUG=inittrace=1).
type boundedRE struct {
	re       *regexp.Regexp
	min, max int
}

func bounded(pattern string, min, max int) boundedRE {
	return boundedRE{re: regexp.MustCompile(pattern), min: min, max: max}
}

// MatchString reports whether s has an allowed length and matches.
func (b boundedRE) MatchString(s string) bool {
	return len(s) >= b.min && len(s) <= b.max && b.re.MatchString(s)
}

// Parse decodes one manifest, rejecting unknown keys and trailing documents.
// It does not validate; call Validate.
func Parse(r io.Reader) (*Manifest, error) {
	var m Manifest
	if err := decodeStrict(r, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// ParseCatalogue decodes topics.yaml, rejecting unknown keys.
func ParseCatalogue(r io.Reader) (*Catalogue, error) {
	var c Catalogue
	if err := decodeStrict(r, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

func decodeStrict(r io.Reader, v any) error {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: empty document", ErrInvalid)
		}
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: more than one YAML document", ErrInvalid)
	}
	return nil
}

// LoadFile reads and parses one manifest file.
func LoadFile(path string) (*Manifest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, err := Parse(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	m.Path = path
	return m, nil
}

// LoadRepo reads root/topics.yaml and every root/functions/*/function.yaml
// and validates them together. Adding a folder with a manifest is all it
// takes for a function to be picked up.
func LoadRepo(root string) (*Repo, error) {
	data, err := os.ReadFile(filepath.Join(root, "topics.yaml"))
	if err != nil {
		return nil, err
	}
	cat, err := ParseCatalogue(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("topics.yaml: %w", err)
	}
	paths, err := filepath.Glob(filepath.Join(root, "functions", "*", "function.yaml"))
	if err != nil {
		return nil, err
	}
	repo := &Repo{Root: root, Topics: *cat}
	var errs []error
	if err := cat.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("topics.yaml: %w", err))
	}
	for _, p := range paths {
		m, err := LoadFile(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if folder := filepath.Base(filepath.Dir(p)); m.Name != folder {
			errs = append(errs, fmt.Errorf("%s: %w: name %q must equal its folder %q", p, ErrInvalid, m.Name, folder))
		}
		if err := m.Validate(cat); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
		}
		repo.Functions = append(repo.Functions, m)
	}
	sort.Slice(repo.Functions, func(i, j int) bool { return repo.Functions[i].Name < repo.Functions[j].Name })
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return repo, nil
}

// Function returns the manifest with the given name, or nil.
func (r *Repo) Function(name string) *Manifest {
	for _, m := range r.Functions {
		if m.Name == name {
			return m
		}
	}
	return nil
}

// Validate checks the catalogue.
func (c *Catalogue) Validate() error {
	var p problems
	if len(c.Topics) == 0 {
		p.add("topics", "at least one topic is required")
	}
	for _, name := range slices.Sorted(maps.Keys(c.Topics)) {
		t := c.Topics[name]
		f := "topics." + name
		if !topicRE.MatchString(name) || strings.HasPrefix(name, "goog") {
			p.add(f, "is not a valid Pub/Sub topic id (3-255 characters, starting with a letter, not \"goog\")")
		}
		if strings.HasSuffix(name, DeadLetterSuffix) {
			p.add(f, "must not end in %q: that suffix is reserved for dead-letter topics", DeadLetterSuffix)
		}
		if t.Owner == "" {
			p.add(f+".owner", "is required")
		}
		if len(t.EventTypes) == 0 {
			p.add(f+".event_types", "at least one event type is required")
		}
		if t.Retention != "" {
			if s, ok := seconds(t.Retention); !ok || s < 600 || s > 31*24*3600 {
				p.add(f+".retention", "%q must be whole seconds like \"604800s\" between 600s and 2678400s", t.Retention)
			}
		}
	}
	return p.err()
}

// DeadLetterSuffix ends the id of every function's dead-letter topic.
const DeadLetterSuffix = ".dlq"

// DeadLetterTopic is the id of the dead-letter topic of a function.
func DeadLetterTopic(function string) string { return function + DeadLetterSuffix }

// SubscriptionID is the id of the push subscription of function to topic.
func SubscriptionID(function, topic string) string { return function + "--" + topic }

// Validate checks one manifest against the topic catalogue. It reports every
// problem it finds, joined, each wrapping ErrInvalid (and ErrUnknownTopic
// where a topic is not in the catalogue).
func (m *Manifest) Validate(cat *Catalogue) error {
	var p problems
	if !nameRE.MatchString(m.Name) {
		p.add("name", "%q must be 3-30 lowercase letters, digits or dashes, starting with a letter", m.Name)
	}
	if strings.TrimSpace(m.Description) == "" {
		p.add("description", "is required")
	}
	if !nameRE.MatchString(m.Owner.Team) {
		p.add("owner.team", "%q must be 3-30 lowercase letters, digits or dashes", m.Owner.Team)
	}
	if len(m.Owner.Codeowners) == 0 {
		p.add("owner.codeowners", "at least one GitHub team, user or email is required")
	}
	for i, c := range m.Owner.Codeowners {
		if !codeownerRE.MatchString(c) {
			p.add(fmt.Sprintf("owner.codeowners[%d]", i), "%q is not @user, @org/team or an email", c)
		}
	}
	switch m.Kind {
	case KindCloudEvent, KindHTTP:
	default:
		p.add("kind", "%q must be %q or %q", m.Kind, KindCloudEvent, KindHTTP)
	}
	if !identRE.MatchString(m.EntryPoint) {
		p.add("entry_point", "%q must be an exported Go identifier", m.EntryPoint)
	}
	switch m.Idempotency {
	case IdempotencyTransactional, IdempotencyLease, IdempotencyNone:
	default:
		p.add("idempotency", "%q must be one of transactional, lease, none", m.Idempotency)
	}
	if (m.Idempotency == IdempotencyTransactional || m.Idempotency == IdempotencyLease) && !m.Database {
		p.add("database", "must be true: idempotency %q keeps its records in PostgreSQL", m.Idempotency)
	}
	m.validateTables(&p)

	consumesAny := len(m.Consumes) > 0 || m.ConsumesDeadLetters != nil
	if m.Kind == KindHTTP && consumesAny {
		p.add("consumes", "an http service cannot consume topics; use kind: cloudevent")
	}
	if m.Kind == KindCloudEvent && !consumesAny {
		p.add("consumes", "a cloudevent function must consume at least one topic (or set consumes_dead_letters)")
	}
	seen := map[string]bool{}
	for i, s := range m.Consumes {
		f := fmt.Sprintf("consumes[%d]", i)
		if _, ok := cat.Topics[s.Topic]; !ok {
			p.addErr(f+".topic", fmt.Errorf("%w %q: add it to topics.yaml", ErrUnknownTopic, s.Topic))
		}
		if seen[s.Topic] {
			p.add(f+".topic", "%q is consumed twice", s.Topic)
		}
		seen[s.Topic] = true
		s.Delivery.validate(&p, f)
	}
	if m.ConsumesDeadLetters != nil {
		if m.ConsumesDeadLetters.Ordering {
			p.add("consumes_dead_letters.ordering", "dead-letter topics carry messages of many keys; ordering is not supported")
		}
		m.ConsumesDeadLetters.validate(&p, "consumes_dead_letters")
	}
	pub := map[string]bool{}
	for i, t := range m.Publishes {
		f := fmt.Sprintf("publishes[%d]", i)
		if t == PublishesAll {
			if len(m.Publishes) > 1 {
				p.add(f, "%q (every topic) must be the only entry", PublishesAll)
			}
			continue
		}
		if _, ok := cat.Topics[t]; !ok {
			p.addErr(f, fmt.Errorf("%w %q: add it to topics.yaml", ErrUnknownTopic, t))
		}
		if pub[t] {
			p.add(f, "%q is listed twice", t)
		}
		pub[t] = true
	}
	m.Resources.validate(&p, m.Kind)
	m.validateDeadlines(&p)
	m.validateSchedules(&p)
	for _, k := range slices.Sorted(maps.Keys(m.Env)) {
		if !envRE.MatchString(k) || slices.Contains(reservedEnv, k) {
			p.add("env."+k, "is not an allowed variable name (upper case, digits, underscores; not one Cloud Run sets)")
		}
	}
	for _, k := range slices.Sorted(maps.Keys(m.SecretEnv)) {
		s := m.SecretEnv[k]
		if !envRE.MatchString(k) || slices.Contains(reservedEnv, k) {
			p.add("secret_env."+k, "is not an allowed variable name")
		}
		if _, dup := m.Env[k]; dup {
			p.add("secret_env."+k, "is also set in env")
		}
		if !secretRE.MatchString(s.Secret) {
			p.add("secret_env."+k+".secret", "%q is not a Secret Manager secret id", s.Secret)
		}
		if s.Version != "latest" {
			if n, err := strconv.Atoi(s.Version); err != nil || n < 1 {
				p.add("secret_env."+k+".version", "%q must be \"latest\" or a version number", s.Version)
			}
		}
	}
	return p.err()
}

func (d Delivery) validate(p *problems, f string) {
	if d.MaxDeliveryAttempts < MinDeliveryAttempts || d.MaxDeliveryAttempts > MaxDeliveryAttempts {
		p.add(f+".max_delivery_attempts", "%d is out of range %d..%d", d.MaxDeliveryAttempts, MinDeliveryAttempts, MaxDeliveryAttempts)
	}
	minB, ok1 := seconds(d.MinBackoff)
	if !ok1 || minB > MaxBackoffSeconds {
		p.add(f+".min_backoff", "%q must be whole seconds between 0s and %ds", d.MinBackoff, MaxBackoffSeconds)
	}
	maxB, ok2 := seconds(d.MaxBackoff)
	if !ok2 || maxB > MaxBackoffSeconds {
		p.add(f+".max_backoff", "%q must be whole seconds between 0s and %ds", d.MaxBackoff, MaxBackoffSeconds)
	}
	if ok1 && ok2 && minB > maxB {
		p.add(f+".min_backoff", "%s is greater than max_backoff %s", d.MinBackoff, d.MaxBackoff)
	}
	if a, ok := seconds(d.AckDeadline); !ok || a < MinAckDeadline || a > MaxAckDeadline {
		p.add(f+".ack_deadline", "%q must be whole seconds between %ds and %ds", d.AckDeadline, MinAckDeadline, MaxAckDeadline)
	}
	if len(d.Filter) > 256 {
		p.add(f+".filter", "is longer than the 256 characters Pub/Sub accepts")
	}
}

func (r Resources) validate(p *problems, kind string) {
	if m := memoryRE.FindStringSubmatch(r.Memory); m == nil {
		p.add("resources.memory", "%q must look like 256Mi or 1Gi", r.Memory)
	} else {
		n, _ := strconv.Atoi(m[1])
		if m[2] == "Gi" {
			n *= 1024
		}
		if n < 128 || n > 32768 {
			p.add("resources.memory", "%q is out of range 128Mi..32Gi", r.Memory)
		}
	}
	if c, err := strconv.ParseFloat(r.CPU, 64); err != nil || c < 0.083 || c > 8 {
		p.add("resources.cpu", "%q must be a number of vCPUs between 0.083 and 8, as a string", r.CPU)
	}
	if r.Concurrency < 1 || r.Concurrency > MaxConcurrency {
		p.add("resources.concurrency", "%d is out of range 1..%d", r.Concurrency, MaxConcurrency)
	}
	if r.MinInstances < 0 {
		p.add("resources.min_instances", "%d must not be negative", r.MinInstances)
	}
	if r.MaxInstances < 1 || r.MaxInstances < r.MinInstances {
		p.add("resources.max_instances", "%d must be at least 1 and at least min_instances", r.MaxInstances)
	}
	limit := MaxEventTimeout
	if kind == KindHTTP {
		limit = MaxHTTPTimeout
	}
	if t, ok := seconds(r.Timeout); !ok || t < 1 || t > limit {
		p.add("resources.timeout", "%q must be whole seconds between 1s and %ds", r.Timeout, limit)
	}
}

// validateSchedules checks the schedules and internal flag of an HTTP
// service.
func (m *Manifest) validateSchedules(p *problems) {
	if m.Kind != KindHTTP {
		if len(m.Schedules) > 0 {
			p.add("schedules", "only http services are called on a schedule")
		}
		if m.Internal {
			p.add("internal", "only http services can be internal")
		}
		return
	}
	if m.Internal && len(m.Schedules) == 0 {
		p.add("internal", "an internal service needs schedules: nothing else may call it")
	}
	names := map[string]bool{}
	for i, s := range m.Schedules {
		f := fmt.Sprintf("schedules[%d]", i)
		if !scheduleRE.MatchString(s.Name) {
			p.add(f+".name", "%q must be 1-41 lowercase letters, digits or dashes, starting with a letter", s.Name)
		}
		if names[s.Name] {
			p.add(f+".name", "%q is used twice", s.Name)
		}
		names[s.Name] = true
		if !strings.HasPrefix(s.Path, "/") {
			p.add(f+".path", "%q must start with /", s.Path)
		}
		if len(strings.Fields(s.Cron)) != 5 {
			p.add(f+".cron", "%q must be a five-field cron expression such as \"* * * * *\"", s.Cron)
		}
	}
}

// validateDeadlines keeps handler_timeout + AfterBudgetSeconds < every ack
// deadline <= resources.timeout: a push must be answered before Pub/Sub
// redelivers it, and the platform must not kill a request Pub/Sub still
// waits for.
func (m *Manifest) validateDeadlines(p *problems) {
	if m.Kind != KindCloudEvent {
		if m.Resources.HandlerTimeout != "" {
			p.add("resources.handler_timeout", "is only for cloudevent functions")
		}
		return
	}
	h, ok := seconds(m.Resources.HandlerTimeout)
	if !ok || h < 1 {
		p.add("resources.handler_timeout", "%q must be whole seconds, at least 1s", m.Resources.HandlerTimeout)
		return
	}
	timeout, _ := seconds(m.Resources.Timeout)
	check := func(f string, d Delivery) {
		a, ok := seconds(d.AckDeadline)
		if !ok {
			return // reported by Delivery.validate
		}
		if h+AfterBudgetSeconds >= a {
			p.add(f+".ack_deadline", "%s must be longer than resources.handler_timeout %s + %ds for the work after it, or Pub/Sub redelivers messages still being handled", d.AckDeadline, m.Resources.HandlerTimeout, AfterBudgetSeconds)
		}
		if timeout > 0 && a > timeout {
			p.add(f+".ack_deadline", "%s must not exceed resources.timeout %s: the request would be cut while Pub/Sub still waits for it", d.AckDeadline, m.Resources.Timeout)
		}
	}
	for i, s := range m.Consumes {
		check(fmt.Sprintf("consumes[%d]", i), s.Delivery)
	}
	if m.ConsumesDeadLetters != nil {
		check("consumes_dead_letters", *m.ConsumesDeadLetters)
	}
}

func seconds(s string) (int, bool) {
	m := secondsRE.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1])
	return n, err == nil
}

// Seconds parses a manifest duration ("600s") into whole seconds.
func Seconds(s string) (int, error) {
	n, ok := seconds(s)
	if !ok {
		return 0, fmt.Errorf("%w: %q is not whole seconds like \"600s\"", ErrInvalid, s)
	}
	return n, nil
}

type problems struct{ errs []error }

func (p *problems) add(field, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%w: %s: %s", ErrInvalid, field, fmt.Sprintf(format, args...)))
}

func (p *problems) addErr(field string, err error) {
	p.errs = append(p.errs, fmt.Errorf("%w: %s: %w", ErrInvalid, field, err))
}

func (p *problems) err() error { return errors.Join(p.errs...) }

// validateTables checks the shape of tables: names only; whether a table
// exists is tools/cmd/migrate's check, against the migrated database.
func (m *Manifest) validateTables(p *problems) {
	if len(m.Tables.Write)+len(m.Tables.Read) > 0 && !m.Database {
		p.add("tables", "needs database: true (the grants are of the function's database role)")
	}
	seen := map[string]string{}
	for _, list := range []struct {
		key   string
		names []string
	}{{"tables.write", m.Tables.Write}, {"tables.read", m.Tables.Read}} {
		for i, t := range list.names {
			field := fmt.Sprintf("%s[%d]", list.key, i)
			switch {
			case !tableRE.MatchString(t):
				p.add(field, "%q must be a lowercase table name (letters, digits, underscores)", t)
			case slices.Contains(KernelTables, t):
				p.add(field, "%q is a kernel table, granted to every database function implicitly", t)
			case strings.HasPrefix(t, "goose_"):
				p.add(field, "%q is a migration version table, not the function's", t)
			case seen[t] != "":
				p.add(field, "%q is listed twice (also in %s)", t, seen[t])
			}
			if seen[t] == "" {
				seen[t] = field
			}
		}
	}
}
