package manifest_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"example.com/platform/shared/manifest"
)

const goodCatalogue = `
topics:
  order.created:
    description: d
    owner: orders
    event_types: [com.example.orders.order.created.v1]
    retention: 604800s
  payment.processed:
    description: d
    owner: payments
    event_types: [com.example.payments.payment.processed.v1]
`

const goodManifest = `
name: payment
description: Charges orders.
owner:
  team: payments
  codeowners: ["@example-org/payments"]
kind: cloudevent
entry_point: Payment
idempotency: lease
database: true
consumes:
  - topic: order.created
    ordering: true
    filter: 'attributes.ce-type = "x"'
    max_delivery_attempts: 10
    min_backoff: 10s
    max_backoff: 600s
    ack_deadline: 60s
publishes: [payment.processed]
resources:
  memory: 256Mi
  cpu: "1"
  concurrency: 10
  min_instances: 0
  max_instances: 5
  timeout: 60s
  handler_timeout: 50s
env:
  GATEWAY_URL: http://gw
secret_env:
  API_KEY: {secret: gw-key, version: latest}
`

func catalogue(t *testing.T) *manifest.Catalogue {
	t.Helper()
	c, err := manifest.ParseCatalogue(strings.NewReader(goodCatalogue))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestGoodManifest(t *testing.T) {
	m, err := manifest.Parse(strings.NewReader(goodManifest))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Validate(catalogue(t)); err != nil {
		t.Fatal(err)
	}
	if m.Consumes[0].MaxDeliveryAttempts != 10 || !m.Consumes[0].Ordering || m.SecretEnv["API_KEY"].Secret != "gw-key" {
		t.Fatalf("decoded %+v", m)
	}
}

func TestUnknownKeyIsRejected(t *testing.T) {
	_, err := manifest.Parse(strings.NewReader(goodManifest + "colour: blue\n"))
	if !errors.Is(err, manifest.ErrInvalid) || !strings.Contains(err.Error(), "colour") {
		t.Fatalf("err = %v, want invalid naming the unknown key", err)
	}
	nested := strings.Replace(goodManifest, "ack_deadline: 60s", "ack_deadline: 60s\n    ack_dedline: 60s", 1)
	if _, err := manifest.Parse(strings.NewReader(nested)); err == nil || !strings.Contains(err.Error(), "ack_dedline") {
		t.Fatalf("nested unknown key: err = %v", err)
	}
}

func TestEmptyAndMultiDocument(t *testing.T) {
	if _, err := manifest.Parse(strings.NewReader("")); !errors.Is(err, manifest.ErrInvalid) {
		t.Fatalf("empty: %v", err)
	}
	if _, err := manifest.Parse(strings.NewReader(goodManifest + "---\nname: x\n")); err == nil {
		t.Fatal("two documents accepted")
	}
}

func TestValidationErrors(t *testing.T) {
	cases := []struct {
		name, old, new, want string
		unknownTopic         bool
	}{
		{"attempts too low", "max_delivery_attempts: 10", "max_delivery_attempts: 4", "consumes[0].max_delivery_attempts: 4 is out of range 5..100", false},
		{"attempts too high", "max_delivery_attempts: 10", "max_delivery_attempts: 101", "out of range 5..100", false},
		{"backoff order", "min_backoff: 10s", "min_backoff: 700s", "consumes[0].min_backoff", false},
		{"backoff format", "max_backoff: 600s", "max_backoff: 10m", "consumes[0].max_backoff: \"10m\" must be whole seconds", false},
		{"ack deadline", "ack_deadline: 60s", "ack_deadline: 5s", "consumes[0].ack_deadline", false},
		{"unknown consumed topic", "- topic: order.created", "- topic: order.cancelled", "consumes[0].topic: unknown topic \"order.cancelled\"", true},
		{"unknown published topic", "publishes: [payment.processed]", "publishes: [payment.refunded]", "publishes[0]: unknown topic \"payment.refunded\"", true},
		{"kind", "kind: cloudevent", "kind: cron", "kind: \"cron\"", false},
		{"idempotency", "idempotency: lease", "idempotency: maybe", "idempotency: \"maybe\"", false},
		{"idempotency needs database", "database: true", "database: false", "database: must be true", false},
		{"table name", "database: true", "database: true\ntables: {write: [payments, Orders]}", "tables.write[1]: \"Orders\" must be a lowercase table name", false},
		{"table twice", "database: true", "database: true\ntables: {write: [payments], read: [payments]}", "tables.read[0]: \"payments\" is listed twice (also in tables.write[0])", false},
		{"kernel table", "database: true", "database: true\ntables: {write: [outbox]}", "tables.write[0]: \"outbox\" is a kernel table", false},
		{"version table", "database: true", "database: true\ntables: {read: [goose_orders]}", "tables.read[0]: \"goose_orders\" is a migration version table", false},
		{"tables need database", "database: true", "database: false\ntables: {read: [payments]}", "tables: needs database: true", false},
		{"memory", "memory: 256Mi", "memory: 256MB", "resources.memory", false},
		{"cpu", `cpu: "1"`, `cpu: "16"`, "resources.cpu", false},
		{"concurrency", "concurrency: 10", "concurrency: 0", "resources.concurrency: 0 is out of range 1..1000", false},
		{"instances", "max_instances: 5", "max_instances: 0", "resources.max_instances", false},
		{"timeout", "timeout: 60s", "timeout: 600s", "resources.timeout: \"600s\" must be whole seconds between 1s and 540s", false},
		{"entry point", "entry_point: Payment", "entry_point: payment", "entry_point", false},
		{"reserved env", "GATEWAY_URL: http://gw", "PORT: \"9\"", "env.PORT", false},
		{"secret version", "version: latest", "version: newest", "secret_env.API_KEY.version", false},
		{"owner", "team: payments", "team: P", "owner.team", false},
		{"codeowners", `codeowners: ["@example-org/payments"]`, `codeowners: ["payments team"]`, "owner.codeowners[0]", false},
		{"http consumes", "kind: cloudevent", "kind: http", "an http service cannot consume topics", false},
		{"name", "name: payment", "name: Payment_Fn", "name: \"Payment_Fn\"", false},
		{"handler timeout missing", "handler_timeout: 50s", "handler_timeout: \"\"", "resources.handler_timeout: \"\" must be whole seconds", false},
		{"no room after the handler", "handler_timeout: 50s", "handler_timeout: 55s", "consumes[0].ack_deadline: 60s must be longer than resources.handler_timeout 55s + 5s", false},
		{"ack deadline past the timeout", "timeout: 60s", "timeout: 50s", "consumes[0].ack_deadline: 60s must not exceed resources.timeout 50s", false},
	}
	cat := catalogue(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(goodManifest, tc.old, tc.new, 1)
			if src == goodManifest {
				t.Fatalf("replacement %q not applied", tc.old)
			}
			m, err := manifest.Parse(strings.NewReader(src))
			if err != nil {
				t.Fatal(err)
			}
			err = m.Validate(cat)
			if err == nil {
				t.Fatal("validation passed")
			}
			if !errors.Is(err, manifest.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v\nwant it to contain %q", err, tc.want)
			}
			if errors.Is(err, manifest.ErrUnknownTopic) != tc.unknownTopic {
				t.Fatalf("errors.Is(err, ErrUnknownTopic) = %v, want %v", !tc.unknownTopic, tc.unknownTopic)
			}
		})
	}
}

func TestAllProblemsReportedAtOnce(t *testing.T) {
	src := strings.NewReplacer("max_delivery_attempts: 10", "max_delivery_attempts: 1", "concurrency: 10", "concurrency: 0").Replace(goodManifest)
	m, _ := manifest.Parse(strings.NewReader(src))
	err := m.Validate(catalogue(t))
	if err == nil || !strings.Contains(err.Error(), "max_delivery_attempts") || !strings.Contains(err.Error(), "concurrency") {
		t.Fatalf("err = %v, want both problems", err)
	}
}

func TestRepositoryManifestsAreValid(t *testing.T) {
	repo, err := manifest.LoadRepo(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if len(repo.Functions) == 0 {
		t.Fatal("no function manifests found")
	}
	for _, m := range repo.Functions {
		if m.Path == "" || repo.Function(m.Name) != m {
			t.Fatalf("bad manifest entry %+v", m)
		}
	}
}

func TestLoadRepoChecksFolderName(t *testing.T) {
	root := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("topics.yaml", goodCatalogue)
	write("functions/billing/function.yaml", goodManifest)
	_, err := manifest.LoadRepo(root)
	if err == nil || !strings.Contains(err.Error(), `must equal its folder "billing"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestCatalogueValidation(t *testing.T) {
	c, err := manifest.ParseCatalogue(strings.NewReader("topics:\n  x.dlq:\n    owner: a\n    event_types: [t]\n    retention: 5s\n"))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	if err == nil || !strings.Contains(err.Error(), "reserved for dead-letter") || !strings.Contains(err.Error(), "retention") {
		t.Fatalf("err = %v", err)
	}
}

const relayManifest = `
name: relay
description: Publishes what the outbox holds.
owner: {team: platform, codeowners: ["@example-org/platform"]}
kind: http
entry_point: Relay
idempotency: none
database: true
internal: true
publishes: ["*"]
schedules:
  - {name: outbox-relay, path: /run, cron: "* * * * *"}
resources: {memory: 256Mi, cpu: "1", concurrency: 1, max_instances: 1, timeout: 120s}
`

func TestScheduledInternalServiceThatPublishesEverywhere(t *testing.T) {
	cat := catalogue(t)
	m, err := manifest.Parse(strings.NewReader(relayManifest))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Validate(cat); err != nil {
		t.Fatal(err)
	}
	if got := m.PublishedTopics(cat); strings.Join(got, ",") != "order.created,payment.processed" {
		t.Fatalf("published topics %v, want every catalogue topic", got)
	}
	if m.Schedules[0].Path != "/run" || !m.Internal {
		t.Fatalf("decoded %+v", m)
	}
	for _, tc := range []struct{ old, new, want string }{
		{`publishes: ["*"]`, `publishes: ["*", order.created]`, `publishes[0]: "*" (every topic) must be the only entry`},
		{"cron: \"* * * * *\"", "cron: \"@hourly\"", "schedules[0].cron"},
		{"path: /run", "path: run", "schedules[0].path"},
		{"name: outbox-relay", "name: Outbox_Relay", "schedules[0].name"},
		{"schedules:\n  - {name: outbox-relay, path: /run, cron: \"* * * * *\"}\n", "", "internal: an internal service needs schedules"},
		{"kind: http", "kind: cloudevent", "schedules: only http services"},
	} {
		src := strings.Replace(relayManifest, tc.old, tc.new, 1)
		if src == relayManifest {
			t.Fatalf("replacement %q not applied", tc.old)
		}
		m, err := manifest.Parse(strings.NewReader(src))
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Validate(cat); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q -> %q: err %v, want %q", tc.old, tc.new, err, tc.want)
		}
	}
}
