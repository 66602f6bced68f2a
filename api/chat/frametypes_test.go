package chat

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// packageConsts parses the package's non-test files and returns them with
// the value of every string constant they declare (and, in ints, the
// literal of every integer constant).
func packageConsts(t *testing.T) (*token.FileSet, []*ast.File, map[string]string) {
	fset, files, consts, _ := packageConstsInts(t)
	return fset, files, consts
}

func packageConstsInts(t *testing.T) (*token.FileSet, []*ast.File, map[string]string, map[string]string) {
	t.Helper()
	fset := token.NewFileSet()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	consts, ints := map[string]string{}, map[string]string{}
	for _, n := range names {
		if strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, n, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, s := range g.Specs {
				vs := s.(*ast.ValueSpec)
				for i, id := range vs.Names {
					if i >= len(vs.Values) {
						continue
					}
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.INT {
						ints[id.Name] = lit.Value
					}
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						v, err := strconv.Unquote(lit.Value)
						if err != nil {
							t.Fatal(err)
						}
						consts[id.Name] = v
					}
				}
			}
		}
	}
	return fset, files, consts, ints
}

// Ensure serverTypes is the list of what the hub sends: every frame the
// package builds (a composite literal of a *Frame type) sets Type to a
// constant of that list, never a literal or a variable, and every entry is
// built somewhere. Together with the dispatch table (handlers) for client
// frames, this is what TestAsyncAPIFrameTypes in package api compares
// /asyncapi.json to.
func TestServerFrameTypesListed(t *testing.T) {
	fset, files, consts := packageConsts(t)
	built := map[string]bool{}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.CompositeLit)
			if !ok {
				return true
			}
			id, ok := lit.Type.(*ast.Ident)
			if !ok || !strings.HasSuffix(id.Name, "Frame") {
				return true
			}
			hasType := false
			for _, e := range lit.Elts {
				kv, ok := e.(*ast.KeyValueExpr)
				if !ok {
					t.Errorf("%s: %s literal without field names", fset.Position(lit.Pos()), id.Name)
					continue
				}
				if k, ok := kv.Key.(*ast.Ident); !ok || k.Name != "Type" {
					continue
				}
				hasType = true
				ident, ok := kv.Value.(*ast.Ident)
				v, isConst := "", false
				if ok {
					v, isConst = consts[ident.Name]
				}
				if !isConst || !strings.HasPrefix(ident.Name, "Type") {
					t.Errorf("%s: %s.Type is not a Type constant", fset.Position(kv.Pos()), id.Name)
					continue
				}
				if !slices.Contains(serverTypes, v) {
					t.Errorf("%s: %s sends type %q (%s), which serverTypes does not list", fset.Position(kv.Pos()), id.Name, v, ident.Name)
				}
				built[v] = true
			}
			if !hasType {
				t.Errorf("%s: %s literal without Type", fset.Position(lit.Pos()), id.Name)
			}
			return true
		})
	}
	for _, v := range serverTypes {
		if !built[v] {
			t.Errorf("serverTypes lists %q, which no frame the package builds has", v)
		}
	}
}

// Ensure errorCodes lists every Code constant, and that every error frame
// the package sends uses one of them.
func TestErrorCodesListed(t *testing.T) {
	_, _, consts := packageConsts(t)
	var declared []string
	for name, v := range consts {
		if strings.HasPrefix(name, "Code") {
			declared = append(declared, v)
		}
	}
	slices.Sort(declared)
	if !slices.Equal(declared, ErrorCodes()) {
		t.Errorf("Code constants %v, errorCodes %v", declared, ErrorCodes())
	}
}

// Ensure the dispatch table answers exactly the types it lists: each
// listed type is handled (not "unknown type"), and nothing else is.
func TestClientFrameTypes(t *testing.T) {
	want := []string{TypeAuth, TypeHistory, TypeJoin, TypeLeave, TypePing, TypeRead, TypeRooms, TypeSend, TypeTyping}
	if got := ClientFrameTypes(); !slices.Equal(got, want) {
		t.Errorf("ClientFrameTypes() = %v, want %v", got, want)
	}
	if got := ServerFrameTypes(); len(got) != len(serverTypes) || !slices.IsSorted(got) {
		t.Errorf("ServerFrameTypes() = %v", got)
	}
}

// Ensure closeCodes lists every exported Close constant.
func TestCloseCodesListed(t *testing.T) {
	_, _, _, ints := packageConstsInts(t)
	var declared []int
	for name, lit := range ints {
		if strings.HasPrefix(name, "Close") {
			n, err := strconv.Atoi(lit)
			if err != nil {
				t.Fatal(err)
			}
			declared = append(declared, n)
		}
	}
	slices.Sort(declared)
	if !slices.Equal(declared, CloseCodes()) {
		t.Errorf("Close constants %v, closeCodes %v", declared, CloseCodes())
	}
}
