// Package migrate is the schema step of a deploy (tools/cmd/migrate) and of
// the local stack: it finds every component's goose migrations by
// convention, applies them as the schema's owner, and grants each database
// function's role exactly what its manifest declares (manifest tables:),
// revoking what is no longer declared or no longer deployed.
//
// Components, in the order they are applied:
//
//   - shared/**/migrations/*.sql, by path: the kernel and the shared domain
//     (idempotency, outbox, orders); the component is the folder's parent
//     name, the name the Go code migrates it under (shared/outbox ->
//     "outbox", version table goose_outbox);
//   - <function folder>/migrations/*.sql of every manifest with
//     database: true, by name: the component is the function's name.
//
// There is no list to edit: a new function's migrations are found beside
// its manifest. The files are read from disk under the repository root
// (the migration image copies them there; see
// infra/pipeline/migrate.Dockerfile), so this package imports no function.
// A function checks at start that every component it embeds is applied
// (app.Build), so a component the convention missed fails the local stack
// and its end-to-end tests.
package migrate

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"example.com/platform/shared/manifest"
)

// Component is one schema component: its name (version table
// goose_<name>) and the folder of its *.sql files.
type Component struct {
	Name string
	Dir  string
}

// ErrNoRoot is returned when no repository root is found.
var ErrNoRoot = errors.New("migrate: repository root not found (no topics.yaml above the working directory; set MIGRATE_ROOT)")

// FindRoot returns dir, or when empty the nearest directory above the
// working directory holding topics.yaml.
func FindRoot(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "topics.yaml")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", ErrNoRoot
		}
	}
}

// Discover returns the components under root (see the package comment):
// the shared ones, then those of the database functions of fns.
func Discover(root string, fns []*manifest.Manifest) ([]Component, error) {
	var out []Component
	var shared []string
	err := filepath.WalkDir(filepath.Join(root, "shared"), func(path string, d fs.DirEntry, err error) error {
		if err != nil && path == filepath.Join(root, "shared") && errors.Is(err, fs.ErrNotExist) {
			return filepath.SkipDir // a repository without shared components
		}
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "testdata" {
			return filepath.SkipDir
		}
		if d.IsDir() && d.Name() == "migrations" && hasSQL(path) {
			shared = append(shared, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("migrate: find shared migrations: %w", err)
	}
	sort.Strings(shared)
	for _, dir := range shared {
		out = append(out, Component{Name: filepath.Base(filepath.Dir(dir)), Dir: dir})
	}
	byName := append([]*manifest.Manifest(nil), fns...)
	sort.Slice(byName, func(i, j int) bool { return byName[i].Name < byName[j].Name })
	for _, m := range byName {
		if !m.Database || m.Path == "" {
			continue
		}
		dir := filepath.Join(filepath.Dir(m.Path), "migrations")
		if hasSQL(dir) {
			out = append(out, Component{Name: m.Name, Dir: dir})
		}
	}
	seen := map[string]string{}
	for _, c := range out {
		if prev, ok := seen[c.Name]; ok {
			return nil, fmt.Errorf("migrate: component %q is in both %s and %s: rename one folder", c.Name, prev, c.Dir)
		}
		seen[c.Name] = c.Dir
	}
	return out, nil
}

func hasSQL(dir string) bool {
	m, _ := filepath.Glob(filepath.Join(dir, "*.sql"))
	return len(m) > 0
}

// Functions loads the manifests of the repository at root (functions/)
// and of the extra function folders (relative to root), validated.
func Functions(root string, extra ...string) ([]*manifest.Manifest, error) {
	repo, err := manifest.LoadRepo(root)
	if err != nil {
		return nil, err
	}
	fns := repo.Functions
	for _, dir := range extra {
		m, err := manifest.LoadFile(filepath.Join(root, dir, "function.yaml"))
		if err == nil {
			err = m.Validate(&repo.Topics)
		}
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", dir, err)
		}
		fns = append(fns, m)
	}
	return fns, nil
}
