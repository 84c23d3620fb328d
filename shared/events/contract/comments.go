package contract

import (
	"fmt"
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"reflect"
	"slices"
	"strings"
)

// goComments reads the doc comments of the exported types and struct
// fields of Go packages, given as import path -> source directory, keyed
// "<import path>.<Type>" (the first sentence) and
// "<import path>.<Type>.<Field>" (the whole comment), one line each.
func goComments(sources map[string]string) (map[string]string, error) {
	out := map[string]string{}
	for _, pkg := range slices.Sorted(maps.Keys(sources)) {
		fset := token.NewFileSet()
		pkgs, err := parser.ParseDir(fset, sources[pkg], func(fi fs.FileInfo) bool {
			return !strings.HasSuffix(fi.Name(), "_test.go")
		}, parser.ParseComments)
		if err != nil {
			return nil, fmt.Errorf("contract: comments of %s: %w", pkg, err)
		}
		for _, p := range pkgs {
			for _, f := range p.Files {
				collectComments(f, pkg, out)
			}
		}
	}
	return out, nil
}

func collectComments(f *ast.File, pkg string, out map[string]string) {
	oneLine := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.TYPE {
			continue
		}
		for _, spec := range gd.Specs {
			ts := spec.(*ast.TypeSpec)
			if !ts.Name.IsExported() {
				continue
			}
			txt := ts.Doc.Text()
			if txt == "" && len(gd.Specs) == 1 {
				txt = gd.Doc.Text()
			}
			if txt != "" {
				out[pkg+"."+ts.Name.Name] = oneLine(new(doc.Package).Synopsis(txt))
			}
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				continue
			}
			for _, field := range st.Fields.List {
				txt := field.Doc.Text()
				if txt == "" {
					txt = field.Comment.Text()
				}
				if txt == "" {
					continue
				}
				for _, n := range field.Names {
					if n.IsExported() {
						out[pkg+"."+ts.Name.Name+"."+n.Name] = oneLine(txt)
					}
				}
			}
		}
	}
}

// lookup returns the Reflector's LookupComment for comments.
func lookup(comments map[string]string) func(reflect.Type, string) string {
	return func(t reflect.Type, field string) string {
		k := t.PkgPath() + "." + t.Name()
		if field != "" {
			k += "." + field
		}
		return comments[k]
	}
}
