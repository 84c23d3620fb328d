package sinkenv

import (
	"context"
	"strings"
	"testing"
	"time"

	"example.com/platform/shared/app"
	"example.com/platform/shared/warehouse"
)

var cfg = Config{Sink: "TEST_SINK", JSONLPath: "TEST_JSONL_PATH", DefaultJSONLPath: "test.jsonl"}

func load(t *testing.T, vars map[string]string) (app.Env, error) {
	t.Helper()
	getenv := func(k string) string { return vars[k] }
	return app.LoadEnv(getenv, app.Needs{Vars: cfg.Vars()})
}

func TestBigQueryIsTheDefaultAndNeedsTheDataset(t *testing.T) {
	_, err := load(t, map[string]string{"FUNCTION_NAME": "f"})
	if err == nil || !strings.Contains(err.Error(), EnvProject) || !strings.Contains(err.Error(), EnvDataset) {
		t.Fatalf("err %v, want %s and %s missing", err, EnvProject, EnvDataset)
	}
	env, err := load(t, map[string]string{"FUNCTION_NAME": "f", EnvProject: "p", EnvDataset: "d", EnvInsertTimeout: "3s"})
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.OpenConfig(env, nil, nil)
	bq := got.BigQuery
	if got.Kind != warehouse.KindBigQuery || bq.Project != "p" || bq.Dataset != "d" || bq.InsertTimeout != 3*time.Second ||
		got.JSONLPath != "test.jsonl" {
		t.Fatalf("config %+v", got)
	}
}

func TestLocalSinkNeedsNoDataset(t *testing.T) {
	path := t.TempDir() + "/rows.jsonl"
	env, err := load(t, map[string]string{"FUNCTION_NAME": "f", "TEST_SINK": warehouse.KindJSONL, "TEST_JSONL_PATH": path})
	if err != nil {
		t.Fatal(err)
	}
	oc := cfg.OpenConfig(env, nil, nil)
	if oc.Kind != warehouse.KindJSONL || oc.JSONLPath != path || oc.BigQuery.InsertTimeout != warehouse.DefaultInsertTimeout {
		t.Fatalf("config %+v", oc)
	}
	sink, closer, err := cfg.Open(context.Background(), env, map[string]warehouse.Schema{}, nil)
	if err != nil || sink == nil {
		t.Fatalf("open: %v", err)
	}
	if err := closer.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestInvalidValuesAreNamed(t *testing.T) {
	_, err := load(t, map[string]string{"FUNCTION_NAME": "f", "TEST_SINK": "bogus", EnvInsertTimeout: "-1s"})
	if err == nil || !strings.Contains(err.Error(), "TEST_SINK") || !strings.Contains(err.Error(), EnvInsertTimeout) ||
		strings.Contains(err.Error(), EnvDataset) {
		t.Fatalf("err %v", err)
	}
}
