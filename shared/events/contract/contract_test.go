package contract_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"example.com/platform/shared/events/contract"
	"example.com/platform/shared/events/eventstest"
)

const dir = "contracts"

var files = map[string]string{
	"topics.yaml": `topics:
  thing.created:
    description: A thing was created.
    owner: makers
    event_types: [com.example.test.thing.created.v1]
  thing.done:
    description: A thing is done.
    owner: makers
    event_types: [com.example.test.thing.done.v1]
`,
	"functions/maker/function.yaml": `name: maker
description: Makes things.
owner:
  team: makers
  codeowners: ["@example-org/makers"]
kind: http
entry_point: Maker
idempotency: none
publishes: [thing.created, thing.done]
resources:
  memory: 256Mi
  cpu: "1"
  concurrency: 10
  min_instances: 0
  max_instances: 1
  timeout: 30s
`,
	"functions/watcher/function.yaml": `name: watcher
description: Watches things.
owner:
  team: watchers
  codeowners: ["@example-org/watchers"]
kind: cloudevent
entry_point: Watcher
idempotency: none
consumes:
  - topic: thing.created
    max_delivery_attempts: 5
    min_backoff: 10s
    max_backoff: 300s
    ack_deadline: 30s
resources:
  memory: 256Mi
  cpu: "1"
  concurrency: 10
  min_instances: 0
  max_instances: 1
  timeout: 30s
  handler_timeout: 20s
`,
}

// newRepo writes a repository with two topics of the kernel's fixture
// types, a publisher and a consumer, and generates its contracts.
func newRepo(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		write(t, root, p, content)
	}
	if err := generate(t, root).Write(root); err != nil {
		t.Fatal(err)
	}
	return root
}

func generate(t *testing.T, root string) *contract.Output {
	t.Helper()
	out, err := contract.Generate(contract.Config{Root: root, Dir: dir, Docs: "docs/events.md",
		Sources: map[string]string{reflect.TypeFor[eventstest.Created]().PkgPath(): "../eventstest"}})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func write(t *testing.T, root, p, content string) {
	t.Helper()
	f := filepath.Join(root, filepath.FromSlash(p))
	if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, root, p string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(p)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var createdSchema = dir + "/" + eventstest.TypeCreated + ".json"

// TestGenerateWritesEveryContract checks the generated files: one schema
// per type whose $id is its dataschema, an AsyncAPI 3.0 document with a
// channel per topic, send and receive operations per function and team,
// and the Markdown catalogue with the flow; and that the result is
// current afterwards.
func TestGenerateWritesEveryContract(t *testing.T) {
	root := newRepo(t)
	if err := generate(t, root).Check(root); err != nil {
		t.Fatalf("Check after Write: %v", err)
	}
	if s := read(t, root, createdSchema); !strings.Contains(s, `"$id": "https://example.com/schemas/events/com.example.test.thing.created.v1.json"`) ||
		!strings.Contains(s, `"required": [`) || strings.Contains(s, "additionalProperties") ||
		!strings.Contains(s, `"description": "Created says a thing was created."`) {
		t.Fatalf("schema:\n%s", s)
	}

	var api struct {
		AsyncAPI string `yaml:"asyncapi"`
		Channels map[string]struct {
			Address  string                       `yaml:"address"`
			Owner    string                       `yaml:"x-owner"`
			Messages map[string]map[string]string `yaml:"messages"`
		} `yaml:"channels"`
		Operations map[string]struct {
			Action   string              `yaml:"action"`
			Channel  map[string]string   `yaml:"channel"`
			Team     string              `yaml:"x-team"`
			Messages []map[string]string `yaml:"messages"`
		} `yaml:"operations"`
		Components struct {
			Messages map[string]struct {
				Payload map[string]string `yaml:"payload"`
			} `yaml:"messages"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal([]byte(read(t, root, dir+"/asyncapi.yaml")), &api); err != nil {
		t.Fatal(err)
	}
	if api.AsyncAPI != "3.0.0" || len(api.Channels) != 2 || api.Channels["thing.created"].Owner != "makers" ||
		api.Channels["thing.created"].Messages[eventstest.TypeCreated]["$ref"] != "#/components/messages/"+eventstest.TypeCreated {
		t.Fatalf("asyncapi channels = %+v", api.Channels)
	}
	if p := api.Components.Messages[eventstest.TypeCreated].Payload["$ref"]; p != "./"+eventstest.TypeCreated+".json" {
		t.Fatalf("payload $ref = %q", p)
	}
	ops := map[string]string{}
	for id, o := range api.Operations {
		ops[id] = o.Action + " " + o.Channel["$ref"] + " " + o.Team + " " + o.Messages[0]["$ref"]
	}
	want := map[string]string{
		"maker.send.thing.created":      "send #/channels/thing.created makers #/channels/thing.created/messages/" + eventstest.TypeCreated,
		"maker.send.thing.done":         "send #/channels/thing.done makers #/channels/thing.done/messages/" + eventstest.TypeDone,
		"watcher.receive.thing.created": "receive #/channels/thing.created watchers #/channels/thing.created/messages/" + eventstest.TypeCreated,
	}
	if len(ops) != len(want) {
		t.Fatalf("operations = %v", ops)
	}
	for id, w := range want {
		if ops[id] != w {
			t.Errorf("operation %s = %q, want %q", id, ops[id], w)
		}
	}

	doc := read(t, root, "docs/events.md")
	for _, w := range []string{
		"```mermaid\nflowchart LR\n",
		"  fn_maker --> topic_thing_created\n",
		"  topic_thing_created --> fn_watcher\n",
		"| `thing.created` | makers | [`com.example.test.thing.created.v1`](#comexampletestthingcreatedv1) | `maker` (makers) | `watcher` (watchers) | A thing was created. |",
		"| `thing.done` | makers | [`com.example.test.thing.done.v1`](#comexampletestthingdonev1) | `maker` (makers) | - | A thing is done. |",
		"| `parts[].quantity` | integer | yes |  |",
		"| `parts` | array of object | no |  |",
		"\nCreated says a thing was created.\n",
		"[`com.example.test.thing.created.v1.json`](../contracts/com.example.test.thing.created.v1.json)",
	} {
		if !strings.Contains(doc, w) {
			t.Errorf("docs/events.md lacks %q:\n%s", w, doc)
		}
	}
}

// TestBreakingChangeIsNotRegeneratedAway: when the committed schema of a
// version and its Go type disagree in a breaking way (here the committed
// v1 has count as a string, the Go type an integer), Check and Write fail
// with one line for the field, and Write leaves the committed schema as
// it is while it rewrites everything else.
func TestBreakingChangeIsNotRegeneratedAway(t *testing.T) {
	root := newRepo(t)
	committed := strings.Replace(read(t, root, createdSchema), `"count": {
      "type": "integer"
    }`, `"count": {
      "type": "string"
    }`, 1)
	if committed == read(t, root, createdSchema) {
		t.Fatal("mutation did not apply")
	}
	write(t, root, createdSchema, committed)
	if err := os.Remove(filepath.Join(root, "docs", "events.md")); err != nil {
		t.Fatal(err)
	}

	out := generate(t, root)
	wantLine := "com.example.test.thing.created.v1: field count: type changed from string to integer: publish it as com.example.test.thing.created.v2"
	for name, err := range map[string]error{"Check": out.Check(root), "Write": out.Write(root)} {
		var be *contract.BreakingError
		if !errors.As(err, &be) || len(be.Changes) != 1 || be.Changes[0].String() != wantLine || !strings.Contains(err.Error(), wantLine) {
			t.Fatalf("%s: err = %v, want a BreakingError with the line %q", name, err, wantLine)
		}
	}
	if got := read(t, root, createdSchema); got != committed {
		t.Fatalf("Write overwrote the committed schema of a published version:\n%s", got)
	}
	if !strings.Contains(read(t, root, "docs/events.md"), "| `count` | string | yes |") {
		t.Fatal("docs/events.md was not rewritten from the committed schema")
	}
}

// TestCompatibleChangeIsStaleUntilRegenerated: a new optional field (the
// committed schema lacks parts) is accepted; Check reports the schema as
// stale until Write brings it up to date.
func TestCompatibleChangeIsStaleUntilRegenerated(t *testing.T) {
	root := newRepo(t)
	current := read(t, root, createdSchema)
	i, j := strings.Index(current, `    "parts": {`), strings.Index(current, `    "at": {`)
	if i < 0 || j < i {
		t.Fatalf("unexpected schema layout:\n%s", current)
	}
	write(t, root, createdSchema, current[:i]+current[j:])

	out := generate(t, root)
	if len(out.Breaking) != 0 || len(out.Compatible) != 1 ||
		out.Compatible[0].String() != "com.example.test.thing.created.v1: field parts: new optional field" {
		t.Fatalf("breaking %v, compatible %v", out.Breaking, out.Compatible)
	}
	err := out.Check(root)
	if !errors.Is(err, contract.ErrStale) || !strings.Contains(err.Error(), "run make contracts") {
		t.Fatalf("Check = %v, want ErrStale", err)
	}
	stale, err := out.Stale(root)
	if err != nil || !slices.Equal(stale, []string{createdSchema}) {
		t.Fatalf("Stale = %v, %v", stale, err)
	}
	if err := out.Write(root); err != nil {
		t.Fatal(err)
	}
	if read(t, root, createdSchema) != current {
		t.Fatal("Write did not regenerate the schema")
	}
	if err := generate(t, root).Check(root); err != nil {
		t.Fatalf("Check after Write: %v", err)
	}
}

// TestUnregisteredVersionIsNotDeleted: the committed schema of a type no
// longer registered is a breaking change (its consumers may still receive
// it), and Write keeps the file.
func TestUnregisteredVersionIsNotDeleted(t *testing.T) {
	root := newRepo(t)
	orphan := dir + "/com.example.test.thing.gone.v1.json"
	write(t, root, orphan, "{}\n")
	out := generate(t, root)
	want := "com.example.test.thing.gone.v1: payload: published version is no longer registered: " +
		"keep it registered beside its successor until no consumer needs it, then delete " + orphan
	var be *contract.BreakingError
	if err := out.Write(root); !errors.As(err, &be) || len(be.Changes) != 1 || be.Changes[0].String() != want {
		t.Fatalf("Write = %v, want a BreakingError with the line %q", err, want)
	}
	if read(t, root, orphan) != "{}\n" {
		t.Fatal("the schema of the unregistered version changed")
	}
}

// TestGenerateRejectsCatalogueMismatch: a registered type missing from
// topics.yaml, or a listed type nobody registered, is an error.
func TestGenerateRejectsCatalogueMismatch(t *testing.T) {
	root := newRepo(t)
	write(t, root, "topics.yaml", strings.Replace(files["topics.yaml"], "event_types: [com.example.test.thing.done.v1]",
		"event_types: [com.example.test.thing.finished.v1]", 1))
	_, err := contract.Generate(contract.Config{Root: root, Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "topic thing.done lists com.example.test.thing.finished.v1, which is not a registered type") ||
		!strings.Contains(err.Error(), "type com.example.test.thing.done.v1 (topic thing.done) is missing from the event_types of topics.yaml") {
		t.Fatalf("err = %v", err)
	}
}

// TestSchemaOfRefusesWhatTheProgramsCannotCheck checks that a struct tag
// emitting a keyword outside the runtime validator's subset fails the
// generator, naming the keyword, instead of a program's start when the
// domain package registers the committed file.
func TestSchemaOfRefusesWhatTheProgramsCannotCheck(t *testing.T) {
	type payload struct {
		Code any `json:"code" jsonschema:"oneof_type=string;integer"`
	}
	_, err := contract.SchemaOf(reflect.TypeFor[payload](), "com.example.test.thing.coded.v1", "https://example.com/schemas/events/com.example.test.thing.coded.v1.json")
	if err == nil || !strings.Contains(err.Error(), `"oneOf"`) || !strings.Contains(err.Error(), "not supported") {
		t.Fatalf("err = %v, want the unsupported keyword named", err)
	}
}
