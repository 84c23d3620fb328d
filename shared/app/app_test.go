package app_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"example.com/platform/shared/app"
	"example.com/platform/shared/testing/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func getenv(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadEnvListsEverythingMissing(t *testing.T) {
	_, err := app.LoadEnv(getenv(nil), app.Needs{Database: true, PubSub: true, Vars: []app.Var{{Name: "PAYMENT_GATEWAY_URL", Required: true}}})
	if !errors.Is(err, app.ErrConfig) {
		t.Fatalf("err = %v", err)
	}
	for _, name := range []string{"FUNCTION_NAME", "GOOGLE_CLOUD_PROJECT", "PAYMENT_GATEWAY_URL", "DB_INSTANCE_CONNECTION_NAME (or DATABASE_URL)", "DB_NAME", "DB_USER"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}

func TestLoadEnvValuesAndDefaults(t *testing.T) {
	env, err := app.LoadEnv(getenv(map[string]string{
		"FUNCTION_NAME": "payment", "GOOGLE_CLOUD_PROJECT": "p", "DATABASE_URL": "postgres://x",
		"TIMEOUT": "5s",
	}), app.Needs{Database: true, PubSub: true, Vars: []app.Var{{Name: "TIMEOUT"}, {Name: "MODE", Default: "fast"}}})
	if err != nil {
		t.Fatal(err)
	}
	if env.Lease != app.LeaseDuration {
		t.Fatalf("lease %s, want the default", env.Lease)
	}
	if env.DeadLetterTopic != "payment.dlq" || env.Database.URL != "postgres://x" || !env.Database.IAMAuth || env.Var("MODE") != "fast" || env.Var("TIMEOUT") != "5s" {
		t.Fatalf("env = %+v", env)
	}
}

func TestLoadEnvInvalidValues(t *testing.T) {
	_, err := app.LoadEnv(getenv(map[string]string{
		"FUNCTION_NAME": "f", "DATABASE_URL": "x", "DB_IAM_AUTH": "maybe", "DB_MAX_CONNS": "0", "IDEMPOTENCY_LEASE": "-1s", "N": "abc",
	}), app.Needs{Database: true, Vars: []app.Var{{Name: "N", Check: func(string) error { return errors.New("not a number") }}}})
	if err == nil || !strings.Contains(err.Error(), `DB_IAM_AUTH="maybe"`) || !strings.Contains(err.Error(), `N="abc": not a number`) || !strings.Contains(err.Error(), `DB_MAX_CONNS="0"`) || !strings.Contains(err.Error(), `IDEMPOTENCY_LEASE="-1s"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestOpenDBWithURL(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	pool, closeDB, err := app.OpenDB(context.Background(), app.Database{URL: dsn, MaxConns: app.DefaultMaxConns})
	if err != nil {
		t.Fatal(err)
	}
	defer closeDB()
	if err := pool.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := pool.Config().MaxConns; got != app.DefaultMaxConns {
		t.Fatalf("MaxConns = %d, want the default %d", got, app.DefaultMaxConns)
	}
}

func TestLazyRemembersConfigErrorsAndRetriesOthers(t *testing.T) {
	calls := 0
	l := app.NewLazy(func(context.Context) (http.Handler, error) {
		calls++
		if calls == 1 {
			return nil, errors.New("database not reachable")
		}
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }), nil
	}, nil)
	codes := []int{}
	for range 3 {
		rec := httptest.NewRecorder()
		l.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
		codes = append(codes, rec.Code)
	}
	if codes[0] != http.StatusServiceUnavailable || codes[1] != http.StatusTeapot || codes[2] != http.StatusTeapot || calls != 2 {
		t.Fatalf("codes %v calls %d", codes, calls)
	}

	calls = 0
	bad := app.NewLazy(func(context.Context) (http.Handler, error) {
		calls++
		return nil, app.ErrConfig
	}, nil)
	for range 2 {
		rec := httptest.NewRecorder()
		bad.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
		if rec.Code != http.StatusInternalServerError {
			t.Fatalf("code %d", rec.Code)
		}
	}
	if calls != 1 {
		t.Fatalf("config error rebuilt %d times", calls)
	}
	bad.Reset()
	bad.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/", nil))
	if calls != 2 {
		t.Fatalf("Reset did not rebuild: %d builds", calls)
	}
}
