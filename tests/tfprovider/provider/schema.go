package provider

import (
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/hashicorp/terraform-plugin-go/tfprotov5"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// ErrNoGoogleSchema is returned by LoadSchema when the document has no
// hashicorp/google provider schema.
var ErrNoGoogleSchema = errors.New("no hashicorp/google provider schema")

// Schema is a provider schema converted from the `providers schema -json`
// format to the plugin protocol's types.
type Schema struct {
	Provider    *tfprotov5.Schema
	Resources   map[string]*tfprotov5.Schema
	DataSources map[string]*tfprotov5.Schema
	Functions   map[string]*tfprotov5.Function
}

type jsonDocument struct {
	ProviderSchemas map[string]*jsonProvider `json:"provider_schemas"`
}

type jsonProvider struct {
	Provider          *jsonSchema              `json:"provider"`
	ResourceSchemas   map[string]*jsonSchema   `json:"resource_schemas"`
	DataSourceSchemas map[string]*jsonSchema   `json:"data_source_schemas"`
	Functions         map[string]*jsonFunction `json:"functions"`
}

type jsonSchema struct {
	Version int64      `json:"version"`
	Block   *jsonBlock `json:"block"`
}

type jsonBlock struct {
	Attributes map[string]*jsonAttribute `json:"attributes"`
	BlockTypes map[string]*jsonBlockType `json:"block_types"`
	Deprecated bool                      `json:"deprecated"`
}

type jsonAttribute struct {
	Type       json.RawMessage `json:"type"`
	NestedType json.RawMessage `json:"nested_type"`
	Required   bool            `json:"required"`
	Optional   bool            `json:"optional"`
	Computed   bool            `json:"computed"`
	Sensitive  bool            `json:"sensitive"`
	Deprecated bool            `json:"deprecated"`
	WriteOnly  bool            `json:"write_only"`
}

type jsonBlockType struct {
	NestingMode string     `json:"nesting_mode"`
	Block       *jsonBlock `json:"block"`
	MinItems    int64      `json:"min_items"`
	MaxItems    int64      `json:"max_items"`
}

type jsonFunction struct {
	Parameters        []*jsonParameter `json:"parameters"`
	VariadicParameter *jsonParameter   `json:"variadic_parameter"`
	ReturnType        json.RawMessage  `json:"return_type"`
}

type jsonParameter struct {
	Name       string          `json:"name"`
	Type       json.RawMessage `json:"type"`
	IsNullable bool            `json:"is_nullable"`
}

// LoadSchemaFile reads a schema document (gzipped when the name ends in
// ".gz") with LoadSchema.
func LoadSchemaFile(path string) (*Schema, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load provider schema: %w", err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("load provider schema %s: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}
	s, err := LoadSchema(r)
	if err != nil {
		return nil, fmt.Errorf("load provider schema %s: %w", path, err)
	}
	return s, nil
}

// LoadSchema decodes a `providers schema -json` document and converts the
// schema of the provider whose address ends in "hashicorp/google". Nested
// attribute types (nested_type) cannot be expressed in protocol 5 and are
// reported as an error rather than silently dropped.
func LoadSchema(r io.Reader) (*Schema, error) {
	var doc jsonDocument
	if err := json.NewDecoder(r).Decode(&doc); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	var src *jsonProvider
	for addr, p := range doc.ProviderSchemas {
		if addr == "hashicorp/google" || strings.HasSuffix(addr, "/hashicorp/google") {
			src = p
		}
	}
	if src == nil || src.Provider == nil {
		return nil, ErrNoGoogleSchema
	}
	out := &Schema{
		Resources:   make(map[string]*tfprotov5.Schema, len(src.ResourceSchemas)),
		DataSources: make(map[string]*tfprotov5.Schema, len(src.DataSourceSchemas)),
		Functions:   make(map[string]*tfprotov5.Function, len(src.Functions)),
	}
	var err error
	if out.Provider, err = convertSchema(src.Provider); err != nil {
		return nil, fmt.Errorf("provider: %w", err)
	}
	for name, s := range src.ResourceSchemas {
		if out.Resources[name], err = convertSchema(s); err != nil {
			return nil, fmt.Errorf("resource %s: %w", name, err)
		}
	}
	for name, s := range src.DataSourceSchemas {
		if out.DataSources[name], err = convertSchema(s); err != nil {
			return nil, fmt.Errorf("data source %s: %w", name, err)
		}
	}
	for name, f := range src.Functions {
		if out.Functions[name], err = convertFunction(f); err != nil {
			return nil, fmt.Errorf("function %s: %w", name, err)
		}
	}
	return out, nil
}

func convertSchema(s *jsonSchema) (*tfprotov5.Schema, error) {
	if s.Block == nil {
		return nil, errors.New("no block")
	}
	b, err := convertBlock(s.Block)
	if err != nil {
		return nil, err
	}
	return &tfprotov5.Schema{Version: s.Version, Block: b}, nil
}

var nestingModes = map[string]tfprotov5.SchemaNestedBlockNestingMode{
	"single": tfprotov5.SchemaNestedBlockNestingModeSingle,
	"group":  tfprotov5.SchemaNestedBlockNestingModeGroup,
	"list":   tfprotov5.SchemaNestedBlockNestingModeList,
	"set":    tfprotov5.SchemaNestedBlockNestingModeSet,
	"map":    tfprotov5.SchemaNestedBlockNestingModeMap,
}

// convertBlock converts one block; attributes and nested blocks are sorted
// by name so the served schema is deterministic.
func convertBlock(b *jsonBlock) (*tfprotov5.SchemaBlock, error) {
	out := &tfprotov5.SchemaBlock{Deprecated: b.Deprecated}
	for _, name := range slices.Sorted(maps.Keys(b.Attributes)) {
		a := b.Attributes[name]
		if len(a.NestedType) > 0 {
			return nil, fmt.Errorf("attribute %s: nested_type is not supported by protocol 5", name)
		}
		typ, err := tftypes.ParseJSONType(a.Type)
		if err != nil {
			return nil, fmt.Errorf("attribute %s: type %s: %w", name, a.Type, err)
		}
		out.Attributes = append(out.Attributes, &tfprotov5.SchemaAttribute{
			Name: name, Type: typ,
			Required: a.Required, Optional: a.Optional, Computed: a.Computed,
			Sensitive: a.Sensitive, Deprecated: a.Deprecated, WriteOnly: a.WriteOnly,
		})
	}
	for _, name := range slices.Sorted(maps.Keys(b.BlockTypes)) {
		bt := b.BlockTypes[name]
		mode, ok := nestingModes[bt.NestingMode]
		if !ok {
			return nil, fmt.Errorf("block %s: unknown nesting mode %q", name, bt.NestingMode)
		}
		if bt.Block == nil {
			return nil, fmt.Errorf("block %s: no block", name)
		}
		nb, err := convertBlock(bt.Block)
		if err != nil {
			return nil, fmt.Errorf("block %s: %w", name, err)
		}
		out.BlockTypes = append(out.BlockTypes, &tfprotov5.SchemaNestedBlock{
			TypeName: name, Block: nb, Nesting: mode, MinItems: bt.MinItems, MaxItems: bt.MaxItems,
		})
	}
	return out, nil
}

func convertFunction(f *jsonFunction) (*tfprotov5.Function, error) {
	out := &tfprotov5.Function{}
	conv := func(p *jsonParameter) (*tfprotov5.FunctionParameter, error) {
		typ, err := tftypes.ParseJSONType(p.Type)
		if err != nil {
			return nil, fmt.Errorf("parameter %s: %w", p.Name, err)
		}
		return &tfprotov5.FunctionParameter{Name: p.Name, Type: typ, AllowNullValue: p.IsNullable}, nil
	}
	for _, p := range f.Parameters {
		fp, err := conv(p)
		if err != nil {
			return nil, err
		}
		out.Parameters = append(out.Parameters, fp)
	}
	if f.VariadicParameter != nil {
		fp, err := conv(f.VariadicParameter)
		if err != nil {
			return nil, err
		}
		out.VariadicParameter = fp
	}
	typ, err := tftypes.ParseJSONType(f.ReturnType)
	if err != nil {
		return nil, fmt.Errorf("return type: %w", err)
	}
	out.Return = &tfprotov5.FunctionReturn{Type: typ}
	return out, nil
}
