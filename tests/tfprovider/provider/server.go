// Package provider is a plugin-protocol-5 server that impersonates the
// hashicorp/google provider for offline infrastructure checks.
//
// It serves the provider's real schema (loaded with LoadSchemaFile), so
// Terraform and OpenTofu check every attribute name, type, required argument
// and block nesting of a configuration exactly as the real provider would.
// It never calls a Google API:
//   - plan marks every computed attribute that the configuration and prior
//     state leave null as unknown, at every depth of nested blocks;
//   - apply fills unknown values deterministically (ids from names, e-mails
//     from account ids, ProjectNumber for project numbers, other strings
//     "<type>-<hash>", numbers 0, bools false, collections empty);
//   - read returns the stored state; data sources fill their computed
//     attributes the same way;
//   - import and resource moves are refused with an error.
//
// A Server is safe for concurrent use: the only mutable state is the
// provider configuration, guarded by a mutex.
package provider

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/hashicorp/terraform-plugin-go/tfprotov5"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// Server implements tfprotov5.ProviderServer over a Schema.
type Server struct {
	schema *Schema

	mu      sync.Mutex
	project string
	region  string
}

var _ tfprotov5.ProviderServer = (*Server)(nil)

// New returns a Server for s.
func New(s *Schema) *Server {
	return &Server{schema: s, project: DefaultProject, region: DefaultRegion}
}

func errorDiag(summary, detail string) []*tfprotov5.Diagnostic {
	return []*tfprotov5.Diagnostic{{Severity: tfprotov5.DiagnosticSeverityError, Summary: summary, Detail: detail}}
}

func (s *Server) resource(name string) (*tfprotov5.Schema, []*tfprotov5.Diagnostic) {
	sc, ok := s.schema.Resources[name]
	if !ok {
		return nil, errorDiag("Unsupported resource type", fmt.Sprintf("the test provider's schema subset has no resource type %q; add it to tests/tfprovider/cmd/schemasubset", name))
	}
	return sc, nil
}

func (s *Server) dataSource(name string) (*tfprotov5.Schema, []*tfprotov5.Diagnostic) {
	sc, ok := s.schema.DataSources[name]
	if !ok {
		return nil, errorDiag("Unsupported data source", fmt.Sprintf("the test provider's schema subset has no data source %q; add it to tests/tfprovider/cmd/schemasubset", name))
	}
	return sc, nil
}

func (s *Server) settings() (project, region string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.project, s.region
}

func dynamic(typ tftypes.Type, v tftypes.Value) (*tfprotov5.DynamicValue, []*tfprotov5.Diagnostic) {
	dv, err := tfprotov5.NewDynamicValue(typ, v)
	if err != nil {
		return nil, errorDiag("Encode value", err.Error())
	}
	return &dv, nil
}

func decode(dv *tfprotov5.DynamicValue, typ tftypes.Type) (tftypes.Value, []*tfprotov5.Diagnostic) {
	if dv == nil {
		return tftypes.NewValue(typ, nil), nil
	}
	v, err := dv.Unmarshal(typ)
	if err != nil {
		return v, errorDiag("Decode value", err.Error())
	}
	return v, nil
}

// GetMetadata lists the served types and functions.
func (s *Server) GetMetadata(context.Context, *tfprotov5.GetMetadataRequest) (*tfprotov5.GetMetadataResponse, error) {
	resp := &tfprotov5.GetMetadataResponse{ServerCapabilities: &tfprotov5.ServerCapabilities{}}
	for _, n := range slices.Sorted(maps.Keys(s.schema.Resources)) {
		resp.Resources = append(resp.Resources, tfprotov5.ResourceMetadata{TypeName: n})
	}
	for _, n := range slices.Sorted(maps.Keys(s.schema.DataSources)) {
		resp.DataSources = append(resp.DataSources, tfprotov5.DataSourceMetadata{TypeName: n})
	}
	for _, n := range slices.Sorted(maps.Keys(s.schema.Functions)) {
		resp.Functions = append(resp.Functions, tfprotov5.FunctionMetadata{Name: n})
	}
	return resp, nil
}

// GetProviderSchema returns the whole schema.
func (s *Server) GetProviderSchema(context.Context, *tfprotov5.GetProviderSchemaRequest) (*tfprotov5.GetProviderSchemaResponse, error) {
	return &tfprotov5.GetProviderSchemaResponse{
		ServerCapabilities: &tfprotov5.ServerCapabilities{},
		Provider:           s.schema.Provider,
		ResourceSchemas:    s.schema.Resources,
		DataSourceSchemas:  s.schema.DataSources,
		Functions:          s.schema.Functions,
	}, nil
}

// GetResourceIdentitySchemas returns no identity schemas.
func (s *Server) GetResourceIdentitySchemas(context.Context, *tfprotov5.GetResourceIdentitySchemasRequest) (*tfprotov5.GetResourceIdentitySchemasResponse, error) {
	return &tfprotov5.GetResourceIdentitySchemasResponse{IdentitySchemas: map[string]*tfprotov5.ResourceIdentitySchema{}}, nil
}

// PrepareProviderConfig returns the configuration unchanged: the client
// has already checked it against the provider block's schema.
func (s *Server) PrepareProviderConfig(_ context.Context, req *tfprotov5.PrepareProviderConfigRequest) (*tfprotov5.PrepareProviderConfigResponse, error) {
	return &tfprotov5.PrepareProviderConfigResponse{PreparedConfig: req.Config}, nil
}

// ConfigureProvider records the project and region used for computed
// values; unset or unknown ones keep DefaultProject and DefaultRegion.
func (s *Server) ConfigureProvider(_ context.Context, req *tfprotov5.ConfigureProviderRequest) (*tfprotov5.ConfigureProviderResponse, error) {
	v, diags := decode(req.Config, s.schema.Provider.ValueType())
	if diags != nil {
		return &tfprotov5.ConfigureProviderResponse{Diagnostics: diags}, nil
	}
	vals := map[string]tftypes.Value{}
	if v.IsKnown() && !v.IsNull() {
		_ = v.As(&vals)
	}
	str := func(k string) string {
		var out string
		if a, ok := vals[k]; ok && a.IsKnown() && !a.IsNull() {
			_ = a.As(&out)
		}
		return out
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := str("project"); p != "" {
		s.project = p
	}
	if r := str("region"); r != "" {
		s.region = r
	}
	return &tfprotov5.ConfigureProviderResponse{}, nil
}

// StopProvider has nothing to stop.
func (s *Server) StopProvider(context.Context, *tfprotov5.StopProviderRequest) (*tfprotov5.StopProviderResponse, error) {
	return &tfprotov5.StopProviderResponse{}, nil
}

// ValidateResourceTypeConfig accepts any configuration of a served type:
// names, types, required arguments and block counts are checked by the
// client against the schema.
func (s *Server) ValidateResourceTypeConfig(_ context.Context, req *tfprotov5.ValidateResourceTypeConfigRequest) (*tfprotov5.ValidateResourceTypeConfigResponse, error) {
	_, diags := s.resource(req.TypeName)
	return &tfprotov5.ValidateResourceTypeConfigResponse{Diagnostics: diags}, nil
}

// UpgradeResourceState decodes the stored JSON state with the current
// schema; the schema version never changes here, so nothing is migrated.
func (s *Server) UpgradeResourceState(_ context.Context, req *tfprotov5.UpgradeResourceStateRequest) (*tfprotov5.UpgradeResourceStateResponse, error) {
	sc, diags := s.resource(req.TypeName)
	if diags != nil {
		return &tfprotov5.UpgradeResourceStateResponse{Diagnostics: diags}, nil
	}
	typ := sc.ValueType()
	v, err := req.RawState.UnmarshalWithOpts(typ, tfprotov5.UnmarshalOpts{ValueFromJSONOpts: tftypes.ValueFromJSONOpts{IgnoreUndefinedAttributes: true}})
	if err != nil {
		return &tfprotov5.UpgradeResourceStateResponse{Diagnostics: errorDiag("Decode stored state", err.Error())}, nil
	}
	dv, diags := dynamic(typ, v)
	return &tfprotov5.UpgradeResourceStateResponse{UpgradedState: dv, Diagnostics: diags}, nil
}

// ReadResource returns the current state: nothing drifts offline.
func (s *Server) ReadResource(_ context.Context, req *tfprotov5.ReadResourceRequest) (*tfprotov5.ReadResourceResponse, error) {
	return &tfprotov5.ReadResourceResponse{NewState: req.CurrentState, Private: req.Private}, nil
}

// PlanResourceChange plans the proposed new state with every computed
// attribute left null marked unknown. A destroy plans null; an update whose
// proposal equals the prior state plans the prior state.
func (s *Server) PlanResourceChange(_ context.Context, req *tfprotov5.PlanResourceChangeRequest) (*tfprotov5.PlanResourceChangeResponse, error) {
	sc, diags := s.resource(req.TypeName)
	if diags != nil {
		return &tfprotov5.PlanResourceChangeResponse{Diagnostics: diags}, nil
	}
	typ := sc.ValueType()
	proposed, diags := decode(req.ProposedNewState, typ)
	if diags != nil {
		return &tfprotov5.PlanResourceChangeResponse{Diagnostics: diags}, nil
	}
	prior, diags := decode(req.PriorState, typ)
	if diags != nil {
		return &tfprotov5.PlanResourceChangeResponse{Diagnostics: diags}, nil
	}
	planned := proposed
	if !proposed.IsNull() && !(!prior.IsNull() && proposed.Equal(prior)) {
		var err error
		if planned, err = walkBlock(sc.Block, proposed, markUnknown); err != nil {
			return &tfprotov5.PlanResourceChangeResponse{Diagnostics: errorDiag("Plan "+req.TypeName, err.Error())}, nil
		}
	}
	dv, diags := dynamic(typ, planned)
	return &tfprotov5.PlanResourceChangeResponse{PlannedState: dv, Diagnostics: diags, PlannedPrivate: req.PriorPrivate}, nil
}

// ApplyResourceChange "creates" or "updates" by filling every unknown
// planned value deterministically, and "deletes" by returning null.
func (s *Server) ApplyResourceChange(_ context.Context, req *tfprotov5.ApplyResourceChangeRequest) (*tfprotov5.ApplyResourceChangeResponse, error) {
	sc, diags := s.resource(req.TypeName)
	if diags != nil {
		return &tfprotov5.ApplyResourceChangeResponse{Diagnostics: diags}, nil
	}
	typ := sc.ValueType()
	planned, diags := decode(req.PlannedState, typ)
	if diags != nil {
		return &tfprotov5.ApplyResourceChangeResponse{Diagnostics: diags}, nil
	}
	newState := planned
	if !planned.IsNull() {
		project, region := s.settings()
		f := newFiller(req.TypeName, planned, project, region, false)
		var err error
		if newState, err = walkBlock(sc.Block, planned, f.attr); err != nil {
			return &tfprotov5.ApplyResourceChangeResponse{Diagnostics: errorDiag("Apply "+req.TypeName, err.Error())}, nil
		}
	}
	dv, diags := dynamic(typ, newState)
	return &tfprotov5.ApplyResourceChangeResponse{NewState: dv, Diagnostics: diags, Private: req.PlannedPrivate}, nil
}

// ImportResourceState is refused: there is nothing to import offline.
func (s *Server) ImportResourceState(_ context.Context, req *tfprotov5.ImportResourceStateRequest) (*tfprotov5.ImportResourceStateResponse, error) {
	return &tfprotov5.ImportResourceStateResponse{Diagnostics: errorDiag("Import not supported", "the offline test provider cannot import "+req.TypeName)}, nil
}

// MoveResourceState is refused.
func (s *Server) MoveResourceState(_ context.Context, req *tfprotov5.MoveResourceStateRequest) (*tfprotov5.MoveResourceStateResponse, error) {
	return &tfprotov5.MoveResourceStateResponse{Diagnostics: errorDiag("Move not supported", "the offline test provider cannot move state to "+req.TargetTypeName)}, nil
}

// UpgradeResourceIdentity is refused: no resource has an identity schema.
func (s *Server) UpgradeResourceIdentity(_ context.Context, req *tfprotov5.UpgradeResourceIdentityRequest) (*tfprotov5.UpgradeResourceIdentityResponse, error) {
	return &tfprotov5.UpgradeResourceIdentityResponse{Diagnostics: errorDiag("Resource identity not supported", req.TypeName)}, nil
}

// GenerateResourceConfig is refused.
func (s *Server) GenerateResourceConfig(_ context.Context, req *tfprotov5.GenerateResourceConfigRequest) (*tfprotov5.GenerateResourceConfigResponse, error) {
	return &tfprotov5.GenerateResourceConfigResponse{Diagnostics: errorDiag("Config generation not supported", req.TypeName)}, nil
}

// ValidateDataSourceConfig accepts any configuration of a served type.
func (s *Server) ValidateDataSourceConfig(_ context.Context, req *tfprotov5.ValidateDataSourceConfigRequest) (*tfprotov5.ValidateDataSourceConfigResponse, error) {
	_, diags := s.dataSource(req.TypeName)
	return &tfprotov5.ValidateDataSourceConfigResponse{Diagnostics: diags}, nil
}

// ReadDataSource returns the configuration with every null computed
// attribute filled deterministically (google_project's number is
// ProjectNumber).
func (s *Server) ReadDataSource(_ context.Context, req *tfprotov5.ReadDataSourceRequest) (*tfprotov5.ReadDataSourceResponse, error) {
	sc, diags := s.dataSource(req.TypeName)
	if diags != nil {
		return &tfprotov5.ReadDataSourceResponse{Diagnostics: diags}, nil
	}
	typ := sc.ValueType()
	cfg, diags := decode(req.Config, typ)
	if diags != nil {
		return &tfprotov5.ReadDataSourceResponse{Diagnostics: diags}, nil
	}
	project, region := s.settings()
	f := newFiller(req.TypeName, cfg, project, region, true)
	state, err := walkBlock(sc.Block, cfg, f.attr)
	if err != nil {
		return &tfprotov5.ReadDataSourceResponse{Diagnostics: errorDiag("Read "+req.TypeName, err.Error())}, nil
	}
	dv, diags := dynamic(typ, state)
	return &tfprotov5.ReadDataSourceResponse{State: dv, Diagnostics: diags}, nil
}

// GetFunctions returns the provider functions of the schema.
func (s *Server) GetFunctions(context.Context, *tfprotov5.GetFunctionsRequest) (*tfprotov5.GetFunctionsResponse, error) {
	return &tfprotov5.GetFunctionsResponse{Functions: s.schema.Functions}, nil
}

// CallFunction implements the google provider's id-parsing functions
// (project_from_id, location_from_id, region_from_id, zone_from_id,
// name_from_id, region_from_zone) on their one string argument.
func (s *Server) CallFunction(_ context.Context, req *tfprotov5.CallFunctionRequest) (*tfprotov5.CallFunctionResponse, error) {
	fail := func(msg string) (*tfprotov5.CallFunctionResponse, error) {
		return &tfprotov5.CallFunctionResponse{Error: &tfprotov5.FunctionError{Text: msg}}, nil
	}
	if _, ok := s.schema.Functions[req.Name]; !ok {
		return fail("unknown function " + req.Name)
	}
	if len(req.Arguments) != 1 {
		return fail(req.Name + " takes one argument")
	}
	v, err := req.Arguments[0].Unmarshal(tftypes.String)
	if err != nil {
		return fail(err.Error())
	}
	var arg string
	if err := v.As(&arg); err != nil {
		return fail(err.Error())
	}
	out, err := callFunction(req.Name, arg)
	if err != nil {
		return fail(err.Error())
	}
	dv, err := tfprotov5.NewDynamicValue(tftypes.String, tftypes.NewValue(tftypes.String, out))
	if err != nil {
		return fail(err.Error())
	}
	return &tfprotov5.CallFunctionResponse{Result: &dv}, nil
}

func callFunction(name, arg string) (string, error) {
	segs := strings.Split(strings.Trim(arg, "/"), "/")
	after := func(key string) (string, error) {
		for i := 0; i+1 < len(segs); i++ {
			if segs[i] == key {
				return segs[i+1], nil
			}
		}
		return "", fmt.Errorf("%s: %q has no %s/ segment", name, arg, key)
	}
	switch name {
	case "project_from_id":
		return after("projects")
	case "location_from_id":
		return after("locations")
	case "region_from_id":
		return after("regions")
	case "zone_from_id":
		return after("zones")
	case "name_from_id":
		return segs[len(segs)-1], nil
	case "region_from_zone":
		i := strings.LastIndex(arg, "-")
		if i <= 0 {
			return "", fmt.Errorf("%s: %q is not a zone", name, arg)
		}
		return arg[:i], nil
	}
	return "", fmt.Errorf("function %s is not implemented by the test provider", name)
}

// ValidateEphemeralResourceConfig refuses every type: none is served.
func (s *Server) ValidateEphemeralResourceConfig(_ context.Context, req *tfprotov5.ValidateEphemeralResourceConfigRequest) (*tfprotov5.ValidateEphemeralResourceConfigResponse, error) {
	return &tfprotov5.ValidateEphemeralResourceConfigResponse{Diagnostics: errorDiag("Ephemeral resources not supported", req.TypeName)}, nil
}

// OpenEphemeralResource is refused.
func (s *Server) OpenEphemeralResource(_ context.Context, req *tfprotov5.OpenEphemeralResourceRequest) (*tfprotov5.OpenEphemeralResourceResponse, error) {
	return &tfprotov5.OpenEphemeralResourceResponse{Diagnostics: errorDiag("Ephemeral resources not supported", req.TypeName)}, nil
}

// RenewEphemeralResource is refused.
func (s *Server) RenewEphemeralResource(_ context.Context, req *tfprotov5.RenewEphemeralResourceRequest) (*tfprotov5.RenewEphemeralResourceResponse, error) {
	return &tfprotov5.RenewEphemeralResourceResponse{Diagnostics: errorDiag("Ephemeral resources not supported", req.TypeName)}, nil
}

// CloseEphemeralResource is refused.
func (s *Server) CloseEphemeralResource(_ context.Context, req *tfprotov5.CloseEphemeralResourceRequest) (*tfprotov5.CloseEphemeralResourceResponse, error) {
	return &tfprotov5.CloseEphemeralResourceResponse{Diagnostics: errorDiag("Ephemeral resources not supported", req.TypeName)}, nil
}
