package provider_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/hashicorp/terraform-plugin-go/tfprotov5"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"example.com/platform/tests/tfprovider/provider"
)

func load(t *testing.T) *provider.Schema {
	t.Helper()
	s, err := provider.LoadSchemaFile(filepath.Join("..", "..", "testdata", "google-provider-7.45.0-schema.json.gz"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestLoadSchemaConvertsTheRealSchema(t *testing.T) {
	s := load(t)
	sub := s.Resources["google_pubsub_subscription"]
	if sub == nil {
		t.Fatal("no google_pubsub_subscription")
	}
	attrs := map[string]*tfprotov5.SchemaAttribute{}
	for _, a := range sub.Block.Attributes {
		attrs[a.Name] = a
	}
	if a := attrs["topic"]; a == nil || !a.Required || !a.Type.Is(tftypes.String) {
		t.Errorf("topic = %+v, want a required string", a)
	}
	if a := attrs["labels"]; a == nil || !a.Type.Is(tftypes.Map{ElementType: tftypes.String}) {
		t.Errorf("labels = %+v, want map(string)", a)
	}
	var dlp *tfprotov5.SchemaNestedBlock
	for _, b := range sub.Block.BlockTypes {
		if b.TypeName == "dead_letter_policy" {
			dlp = b
		}
	}
	if dlp == nil || dlp.Nesting != tfprotov5.SchemaNestedBlockNestingModeList || dlp.MaxItems != 1 {
		t.Errorf("dead_letter_policy = %+v, want a list block of at most 1", dlp)
	}
	if s.DataSources["google_project"] == nil || s.Provider == nil || s.Functions["project_from_id"] == nil {
		t.Error("data source google_project, the provider block or function project_from_id missing")
	}
}

func dv(t *testing.T, typ tftypes.Type, v tftypes.Value) *tfprotov5.DynamicValue {
	t.Helper()
	d, err := tfprotov5.NewDynamicValue(typ, v)
	if err != nil {
		t.Fatal(err)
	}
	return &d
}

// topicValue builds a google_pubsub_topic object with name set and every
// other attribute and block null or empty.
func topicValue(t *testing.T, sc *tfprotov5.Schema, name string) tftypes.Value {
	t.Helper()
	typ := sc.ValueType().(tftypes.Object)
	vals := map[string]tftypes.Value{}
	for k, at := range typ.AttributeTypes {
		vals[k] = tftypes.NewValue(at, nil)
	}
	for _, b := range sc.Block.BlockTypes {
		if b.Nesting == tfprotov5.SchemaNestedBlockNestingModeList || b.Nesting == tfprotov5.SchemaNestedBlockNestingModeSet {
			vals[b.TypeName] = tftypes.NewValue(typ.AttributeTypes[b.TypeName], []tftypes.Value{})
		}
	}
	vals["name"] = tftypes.NewValue(tftypes.String, name)
	return tftypes.NewValue(typ, vals)
}

func TestPlanAndApply(t *testing.T) {
	ctx := context.Background()
	s := load(t)
	srv := provider.New(s)
	sc := s.Resources["google_pubsub_topic"]
	typ := sc.ValueType()
	proposed := topicValue(t, sc, "orders")

	plan, err := srv.PlanResourceChange(ctx, &tfprotov5.PlanResourceChangeRequest{
		TypeName: "google_pubsub_topic", PriorState: dv(t, typ, tftypes.NewValue(typ, nil)),
		ProposedNewState: dv(t, typ, proposed), Config: dv(t, typ, proposed),
	})
	if err != nil || len(plan.Diagnostics) > 0 {
		t.Fatalf("plan: %v %v", err, plan.Diagnostics)
	}
	planned, err := plan.PlannedState.Unmarshal(typ)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]tftypes.Value{}
	if err := planned.As(&got); err != nil {
		t.Fatal(err)
	}
	if got["id"].IsKnown() || got["project"].IsKnown() {
		t.Errorf("computed id/project known after plan: %v %v", got["id"], got["project"])
	}
	if !got["labels"].IsNull() {
		t.Errorf("optional non-computed labels changed by plan: %v", got["labels"])
	}

	applied, err := srv.ApplyResourceChange(ctx, &tfprotov5.ApplyResourceChangeRequest{
		TypeName: "google_pubsub_topic", PriorState: dv(t, typ, tftypes.NewValue(typ, nil)),
		PlannedState: plan.PlannedState, Config: dv(t, typ, proposed),
	})
	if err != nil || len(applied.Diagnostics) > 0 {
		t.Fatalf("apply: %v %v", err, applied.Diagnostics)
	}
	state, err := applied.NewState.Unmarshal(typ)
	if err != nil {
		t.Fatal(err)
	}
	if !state.IsFullyKnown() {
		t.Fatalf("state has unknowns after apply: %v", state)
	}
	if err := state.As(&got); err != nil {
		t.Fatal(err)
	}
	var id string
	_ = got["id"].As(&id)
	if want := "projects/" + provider.DefaultProject + "/topics/orders"; id != want {
		t.Errorf("id = %q, want %q", id, want)
	}

	// A plan against the applied state with no change keeps it as is.
	again, err := srv.PlanResourceChange(ctx, &tfprotov5.PlanResourceChangeRequest{
		TypeName: "google_pubsub_topic", PriorState: applied.NewState, ProposedNewState: applied.NewState, Config: dv(t, typ, proposed),
	})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := again.PlannedState.Unmarshal(typ); !v.Equal(state) {
		t.Errorf("no-op plan changed the state: %v", v)
	}
}

func TestReadDataSourceProjectNumber(t *testing.T) {
	s := load(t)
	srv := provider.New(s)
	sc := s.DataSources["google_project"]
	typ := sc.ValueType().(tftypes.Object)
	vals := map[string]tftypes.Value{}
	for k, at := range typ.AttributeTypes {
		vals[k] = tftypes.NewValue(at, nil)
	}
	vals["project_id"] = tftypes.NewValue(tftypes.String, "example-dev")
	resp, err := srv.ReadDataSource(context.Background(), &tfprotov5.ReadDataSourceRequest{TypeName: "google_project", Config: dv(t, typ, tftypes.NewValue(typ, vals))})
	if err != nil || len(resp.Diagnostics) > 0 {
		t.Fatalf("read: %v %v", err, resp.Diagnostics)
	}
	v, _ := resp.State.Unmarshal(typ)
	got := map[string]tftypes.Value{}
	_ = v.As(&got)
	var number string
	_ = got["number"].As(&number)
	if number != provider.ProjectNumber {
		t.Errorf("number = %q, want %q", number, provider.ProjectNumber)
	}
}

func TestCallFunction(t *testing.T) {
	srv := provider.New(load(t))
	arg := dv(t, tftypes.String, tftypes.NewValue(tftypes.String, "projects/p1/locations/europe-west1/functions/payment"))
	for name, want := range map[string]string{"project_from_id": "p1", "location_from_id": "europe-west1", "name_from_id": "payment"} {
		resp, err := srv.CallFunction(context.Background(), &tfprotov5.CallFunctionRequest{Name: name, Arguments: []*tfprotov5.DynamicValue{arg}})
		if err != nil || resp.Error != nil {
			t.Fatalf("%s: %v %v", name, err, resp.Error)
		}
		v, _ := resp.Result.Unmarshal(tftypes.String)
		var got string
		_ = v.As(&got)
		if got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}
