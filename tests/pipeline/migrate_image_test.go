package pipeline_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"example.com/platform/shared/testing/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// TestMigrateImageHasWhatTheToolReads runs the migration image's build
// steps outside Docker: the Go build exactly as migrate.Dockerfile runs it
// (GOWORK=off, CGO_ENABLED=0, in tools/), and its RUN line that copies the
// migrations and manifests, into a temporary /out. The binary, run from
// elsewhere with MIGRATE_ROOT at the copy as the image sets it, migrates
// an empty database completely and grants a function user.
func TestMigrateImageHasWhatTheToolReads(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the migrate tool")
	}
	data, err := os.ReadFile(filepath.Join(root, "infra", "pipeline", "migrate.Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := string(data)
	const build = "RUN cd tools && CGO_ENABLED=0 GOWORK=off go build -trimpath -o /out/migrate ./cmd/migrate"
	if !strings.Contains(df, build) || !strings.Contains(df, "ENV MIGRATE_ROOT=/repo") || !strings.Contains(df, "COPY --from=build /out/repo /repo") {
		t.Fatalf("migrate.Dockerfile no longer builds and ships the tool as this test assumes:\n%s", df)
	}
	// The RUN instruction that fills /out/repo, with its continuation lines.
	var collect string
	lines := strings.Split(df, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "RUN mkdir -p /out/repo") {
			for j := i; j < len(lines); j++ {
				collect += strings.TrimSuffix(lines[j], "\\") + "\n"
				if !strings.HasSuffix(lines[j], "\\") {
					break
				}
			}
		}
	}
	if collect == "" {
		t.Fatal("no RUN line fills /out/repo")
	}
	out := t.TempDir()
	script := strings.ReplaceAll(strings.TrimPrefix(collect, "RUN "), "/out/", out+"/")
	sh := exec.Command("sh", "-c", strings.ReplaceAll(script, "\n", " "))
	sh.Dir = root
	if b, err := sh.CombinedOutput(); err != nil {
		t.Fatalf("collect step: %v\n%s\n%s", err, script, b)
	}
	bin := filepath.Join(out, "migrate")
	gobuild := exec.Command("go", "build", "-trimpath", "-o", bin, "./cmd/migrate")
	gobuild.Dir = filepath.Join(root, "tools")
	gobuild.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off")
	if b, err := gobuild.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}

	dsn := pgtest.NewDatabase(t)
	pool := pgtest.Open(t, dsn)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `DO $$ BEGIN CREATE ROLE "fn-shipment@p.iam"; EXCEPTION WHEN duplicate_object THEN NULL; END $$`); err != nil {
		t.Fatal(err)
	}
	migrate := func(args ...string) (int, string) {
		cmd := exec.Command(bin, args...)
		cmd.Dir = t.TempDir() // not in the repository: only MIGRATE_ROOT leads to the files
		cmd.Env = []string{"MIGRATE_ROOT=" + filepath.Join(out, "repo"), "DATABASE_URL=" + dsn,
			`MIGRATE_FUNCTION_USERS={"shipment": "fn-shipment@p.iam"}`}
		var b bytes.Buffer
		cmd.Stdout, cmd.Stderr = &b, &b
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, b.String()
	}
	if code, o := migrate("status"); code != 3 {
		t.Fatalf("status of an empty database: exit %d, want 3 (pending)\n%s", code, o)
	}
	if code, o := migrate("up"); code != 0 || !strings.Contains(o, "grant: shipment as fn-shipment@p.iam") {
		t.Fatalf("up: exit %d\n%s", code, o)
	}
	if code, o := migrate("status"); code != 0 {
		t.Fatalf("status after up: exit %d\n%s", code, o)
	}
	for _, table := range []string{"processed_events", "outbox", "orders", "payments", "shipments"} {
		var ok bool
		if err := pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", table).Scan(&ok); err != nil || !ok {
			t.Errorf("table %s missing after the image's migrate up (%v)", table, err)
		}
	}
	var granted bool
	if err := pool.QueryRow(ctx, `SELECT has_table_privilege('fn-shipment@p.iam', 'shipments', 'INSERT')`).Scan(&granted); err != nil || !granted {
		t.Fatalf("shipment's user cannot insert shipments (%v)", err)
	}
}
