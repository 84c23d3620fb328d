package contract

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"example.com/platform/shared/events"
	"example.com/platform/shared/manifest"
)

// Default locations, relative to the repository root.
const (
	// DefaultDocs is the generated catalogue of topics and event types.
	DefaultDocs = "docs/events.md"
	// AsyncAPIFile is the name of the AsyncAPI document in the contracts
	// folder.
	AsyncAPIFile = "asyncapi.yaml"
)

// ErrStale is matched by Check's error when a committed contract file
// differs from what the Go types, topics.yaml and the manifests generate.
var ErrStale = errors.New("contracts are stale: run make contracts")

// Config says what to describe and where the contracts live.
type Config struct {
	// Root is the repository root; topics.yaml and
	// functions/*/function.yaml are read from it.
	Root string
	// Dir is the contracts folder, relative to Root, slash-separated
	// (the reference domain's is "shared/domain/contracts").
	Dir string
	// Docs is the generated Markdown catalogue, relative to Root
	// (DefaultDocs when empty).
	Docs string
	// Sources maps the import path of a package holding payload types to
	// its source directory (absolute, or relative to the working
	// directory): the doc comments of its types and fields become the
	// schemas' descriptions. Packages not listed give no descriptions.
	Sources map[string]string
	// Types are the event types to describe; nil means every registered
	// type (events.Types()). Every type must be on a topic of
	// topics.yaml, and every type topics.yaml lists must be among them.
	Types []events.TypeInfo
}

// Output is everything the contracts consist of, generated in memory.
type Output struct {
	// Files maps each path (relative to Root, slash-separated) to its
	// content: one <type>.json per event type and version, the AsyncAPI
	// document and the Markdown catalogue. The schema of a type with a
	// breaking change is its committed one: it is never overwritten.
	Files map[string][]byte
	// Breaking are the changes refused, one per field. A committed schema
	// of a type that is no longer registered is one too: Write never
	// deletes a published version; retiring one is deleting its file by
	// hand once no consumer needs it.
	Breaking []Change
	// Compatible are the changes that regenerating accepts.
	Compatible []Change
}

// Generate builds every contract file from the registered types, the topic
// catalogue and the manifests under cfg.Root, and compares each type's new
// schema with its committed one (cfg.Dir/<type>.json): a new version or a
// compatible change takes the new schema; a breaking change keeps the
// committed schema and is listed in Output.Breaking. It writes nothing.
func Generate(cfg Config) (*Output, error) {
	if cfg.Dir == "" {
		return nil, errors.New("contract: Config.Dir is required")
	}
	if cfg.Docs == "" {
		cfg.Docs = DefaultDocs
	}
	types := cfg.Types
	if types == nil {
		types = events.Types()
	}
	repo, err := manifest.LoadRepo(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("contract: %w", err)
	}
	cat, err := newCatalogue(repo, types)
	if err != nil {
		return nil, err
	}
	comments, err := goComments(cfg.Sources)
	if err != nil {
		return nil, err
	}
	out := &Output{Files: map[string][]byte{}}
	schemas := map[string][]byte{}
	for _, ti := range types {
		p := path.Join(cfg.Dir, ti.Type+".json")
		if ti.GoType() == nil {
			return nil, fmt.Errorf("contract: type %s has no Go payload type", ti.Type)
		}
		gen, err := schemaOf(ti.GoType(), ti.Type, ti.DataSchema, comments)
		if err != nil {
			return nil, err
		}
		committed, err := os.ReadFile(filepath.Join(cfg.Root, filepath.FromSlash(p)))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			schemas[ti.Type] = gen
		case err != nil:
			return nil, fmt.Errorf("contract: %w", err)
		case bytes.Equal(committed, gen):
			schemas[ti.Type] = gen
		default:
			changes, err := Compare(ti.Type, committed, gen)
			if err != nil {
				return nil, err
			}
			if br := Breaking(changes); len(br) > 0 {
				out.Breaking = append(out.Breaking, br...)
				schemas[ti.Type] = committed
			} else {
				out.Compatible = append(out.Compatible, changes...)
				schemas[ti.Type] = gen
			}
		}
		out.Files[p] = schemas[ti.Type]
	}
	existing, err := filepath.Glob(filepath.Join(cfg.Root, filepath.FromSlash(cfg.Dir), "*.json"))
	if err != nil {
		return nil, err
	}
	for _, f := range existing {
		p := path.Join(cfg.Dir, filepath.Base(f))
		if _, ok := out.Files[p]; !ok {
			out.Breaking = append(out.Breaking, Change{
				Type: strings.TrimSuffix(filepath.Base(f), ".json"), Problem: "published version is no longer registered", Breaking: true,
				Fix: "keep it registered beside its successor until no consumer needs it, then delete " + p,
			})
		}
	}
	api, err := asyncAPI(cat)
	if err != nil {
		return nil, err
	}
	out.Files[path.Join(cfg.Dir, AsyncAPIFile)] = api
	rel, err := filepath.Rel(filepath.Dir(filepath.FromSlash(cfg.Docs)), filepath.FromSlash(cfg.Dir))
	if err != nil {
		return nil, err
	}
	doc, err := markdown(cat, schemas, cfg.Dir, filepath.ToSlash(rel))
	if err != nil {
		return nil, err
	}
	out.Files[cfg.Docs] = doc
	return out, nil
}

// Stale returns the paths (relative to root) whose committed content
// differs from o, including missing files, sorted.
func (o *Output) Stale(root string) ([]string, error) {
	var stale []string
	for _, p := range slices.Sorted(maps.Keys(o.Files)) {
		got, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(p)))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		if err != nil || !bytes.Equal(got, o.Files[p]) {
			stale = append(stale, p)
		}
	}
	return stale, nil
}

// Check returns a *BreakingError when a committed schema would change in a
// way that breaks its consumers, else an error matching ErrStale naming
// the files that differ from what the types generate, else nil.
func (o *Output) Check(root string) error {
	if len(o.Breaking) > 0 {
		return &BreakingError{Changes: o.Breaking}
	}
	stale, err := o.Stale(root)
	if err != nil {
		return err
	}
	if len(stale) > 0 {
		return fmt.Errorf("%w (%s)", ErrStale, strings.Join(stale, ", "))
	}
	return nil
}

// Write writes every file of o under root. The schema of a type with a
// breaking change is left as committed, so the change cannot be
// regenerated away: Write then returns a *BreakingError after writing
// everything else.
func (o *Output) Write(root string) error {
	for _, p := range slices.Sorted(maps.Keys(o.Files)) {
		f := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			return err
		}
		if old, err := os.ReadFile(f); err == nil && bytes.Equal(old, o.Files[p]) {
			continue
		}
		if err := os.WriteFile(f, o.Files[p], 0o644); err != nil {
			return err
		}
	}
	if len(o.Breaking) > 0 {
		return &BreakingError{Changes: o.Breaking}
	}
	return nil
}

// catalogue joins topics.yaml, the manifests and the registered types.
type catalogue struct {
	repo   *manifest.Repo
	topics []*topic
}

type topic struct {
	Name string
	manifest.Topic
	Types      []events.TypeInfo
	Publishers []*manifest.Manifest // functions that list the topic in publishes
	Relays     []*manifest.Manifest // functions that publish every topic ("*")
	Consumers  []*manifest.Manifest
}

func newCatalogue(repo *manifest.Repo, types []events.TypeInfo) (*catalogue, error) {
	byType := map[string]events.TypeInfo{}
	for _, ti := range types {
		byType[ti.Type] = ti
	}
	var problems []string
	c := &catalogue{repo: repo}
	listed := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(repo.Topics.Topics)) {
		def := repo.Topics.Topics[name]
		t := &topic{Name: name, Topic: def}
		for _, typ := range def.EventTypes {
			listed[typ] = true
			ti, ok := byType[typ]
			switch {
			case !ok:
				problems = append(problems, fmt.Sprintf("topics.yaml: topic %s lists %s, which is not a registered type", name, typ))
			case ti.Topic != name:
				problems = append(problems, fmt.Sprintf("topics.yaml: topic %s lists %s, which is registered on topic %s", name, typ, ti.Topic))
			default:
				t.Types = append(t.Types, ti)
			}
		}
		slices.SortFunc(t.Types, func(a, b events.TypeInfo) int { return strings.Compare(a.Type, b.Type) })
		for _, m := range repo.Functions {
			if slices.Equal(m.Publishes, []string{manifest.PublishesAll}) {
				t.Relays = append(t.Relays, m)
			} else if slices.Contains(m.Publishes, name) {
				t.Publishers = append(t.Publishers, m)
			}
			for _, s := range m.Consumes {
				if s.Topic == name {
					t.Consumers = append(t.Consumers, m)
				}
			}
		}
		c.topics = append(c.topics, t)
	}
	for _, ti := range types {
		if !listed[ti.Type] {
			problems = append(problems, fmt.Sprintf("type %s (topic %s) is missing from the event_types of topics.yaml", ti.Type, ti.Topic))
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("contract: %s", strings.Join(problems, "; "))
	}
	return c, nil
}
