package readme_test

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"example.com/platform/shared/testing/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// TestMigrateCommand runs the README's `go run ./tools/cmd/migrate` from
// the repository root with each documented subcommand, against an empty
// database: status (pending: exit 3), up, status (exit 0), down of one
// component (status pending again).
func TestMigrateCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the migrate tool")
	}
	line := readmeTableCommand(t, "go run ./tools/cmd/migrate ")
	if !strings.Contains(line, `up\|status\|down`) {
		t.Fatalf("README documents %q; this test runs up, status and down", line)
	}
	dsn := pgtest.NewDatabase(t)
	run := func(args ...string) (int, string) {
		cmd := exec.Command("go", append([]string{"run", "./tools/cmd/migrate"}, args...)...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "DATABASE_URL="+dsn, "MIGRATE_FUNCTION_USERS=", "MIGRATE_ROOT=")
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	for _, step := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"status"}, 3, "pending"},
		{[]string{"up"}, 0, "shipment: applied 0001_shipments.sql"},
		{[]string{"status"}, 0, "applied"},
		{[]string{"down", "shipment"}, 0, "shipment: rolled back 0001_shipments.sql"},
		{[]string{"status", "shipment"}, 3, "pending"},
	} {
		code, out := run(step.args...)
		// go run exits 1 for any failure of the program and names its code.
		if step.code != 0 && code == 1 && strings.Contains(out, "exit status "+strconv.Itoa(step.code)) {
			code = step.code
		}
		if code != step.code || !strings.Contains(out, step.want) {
			t.Fatalf("migrate %v: exit %d, want %d and %q\n%s", step.args, code, step.code, step.want, out)
		}
	}
}

// readmeTableCommand returns the README table cell command starting with
// prefix (inside backquotes).
func readmeTableCommand(t *testing.T, prefix string) string {
	t.Helper()
	data, err := os.ReadFile(root + "/README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if i := strings.Index(l, "`"+prefix); i >= 0 {
			rest := l[i+1:]
			return rest[:strings.Index(rest, "`")]
		}
	}
	t.Fatalf("README has no command %q", prefix)
	return ""
}
