package api

// Response checks against /openapi.json: every response the api tests get
// through env.request is held to the description of its operation and
// status (the status documented, the media type, the headers and the body's
// schema), so the description cannot drift from what the server does. The
// schema checks are a strict subset of JSON Schema 2020-12 (what OpenAPI
// 3.1 uses), written here rather than imported: a keyword the subset does
// not know fails the check, so nothing in the description is ever skipped
// silently, and the checks add no module to go.mod.

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"mime"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// apiSpec is /openapi.json as the checks read it.
type apiSpec struct {
	root map[string]any
	ops  []*specOp
}

// specOp is one operation of the description.
type specOp struct {
	method string // upper case
	path   string // the template, e.g. /admin/users/{name}
	id     string // operationId
	segs   []string
	op     map[string]any
}

// key names the operation in messages.
func (o *specOp) key() string { return o.method + " " + o.path }

var (
	specOnce   sync.Once
	loadedSpec *apiSpec
	specErr    error
)

// theSpec parses the embedded /openapi.json once.
func theSpec() (*apiSpec, error) {
	specOnce.Do(func() { loadedSpec, specErr = newAPISpec(openAPI) })
	return loadedSpec, specErr
}

// newAPISpec parses an OpenAPI document.
func newAPISpec(doc []byte) (*apiSpec, error) {
	var root map[string]any
	if err := json.Unmarshal(doc, &root); err != nil {
		return nil, err
	}
	s := &apiSpec{root: root}
	paths, _ := root["paths"].(map[string]any)
	for path, item := range paths {
		item, _ := item.(map[string]any)
		for m, op := range item {
			op, ok := op.(map[string]any)
			if !ok || !slices.Contains(httpMethods, m) {
				continue
			}
			id, _ := op["operationId"].(string)
			s.ops = append(s.ops, &specOp{method: strings.ToUpper(m), path: path, id: id, segs: strings.Split(path, "/"), op: op})
		}
	}
	slices.SortFunc(s.ops, func(a, b *specOp) int { return strings.Compare(a.key(), b.key()) })
	return s, nil
}

// operation returns the operation that serves method on the request path
// p, preferring literal segments to templated ones (as the mux does), or
// nil when the description has none.
func (s *apiSpec) operation(method, p string) *specOp {
	segs := strings.Split(p, "/")
	var best *specOp
	bestLiteral := -1
	for _, o := range s.ops {
		if o.method != method || len(o.segs) != len(segs) {
			continue
		}
		literal, ok := 0, true
		for i, seg := range o.segs {
			switch {
			case strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}"):
				ok = ok && segs[i] != ""
			case seg == segs[i]:
				literal++
			default:
				ok = false
			}
		}
		if ok && literal > bestLiteral {
			best, bestLiteral = o, literal
		}
	}
	return best
}

// resolve follows a local $ref ("#/components/…") to its target.
func (s *apiSpec) resolve(ref string) (any, error) {
	if !strings.HasPrefix(ref, "#/") {
		return nil, fmt.Errorf("$ref %q: only local references are supported", ref)
	}
	var cur any = s.root
	for _, tok := range strings.Split(ref[2:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("$ref %q: %q is not in an object", ref, tok)
		}
		if cur, ok = m[tok]; !ok {
			return nil, fmt.Errorf("$ref %q: no %q", ref, tok)
		}
	}
	return cur, nil
}

// deref returns obj, or what its $ref points to (responses, headers).
func (s *apiSpec) deref(obj map[string]any) (map[string]any, error) {
	for range 8 {
		ref, ok := obj["$ref"].(string)
		if !ok {
			return obj, nil
		}
		target, err := s.resolve(ref)
		if err != nil {
			return nil, err
		}
		if obj, ok = target.(map[string]any); !ok {
			return nil, fmt.Errorf("$ref %q is not an object", ref)
		}
	}
	return nil, fmt.Errorf("$ref chain too long")
}

// errorSchema is what an undocumented 5xx body must still match.
var errorSchema = map[string]any{"$ref": "#/components/schemas/Error"}

// checkResponse holds one response to op's description. An undocumented
// 5xx (an internal error a test provoked) must still be a JSON Error;
// any other undocumented status is a mismatch.
func (s *apiSpec) checkResponse(op *specOp, status int, h http.Header, body []byte) []string {
	responses, _ := op.op["responses"].(map[string]any)
	code := strconv.Itoa(status)
	raw, ok := responses[code]
	if !ok {
		raw, ok = responses[code[:1]+"XX"]
	}
	if !ok && status >= 500 {
		raw, ok = map[string]any{"description": "internal", "content": map[string]any{"application/json": map[string]any{"schema": errorSchema}}}, true
	}
	if !ok {
		return []string{fmt.Sprintf("status %d is not documented (documented: %s)", status, strings.Join(sortedKeys(responses), ", "))}
	}
	resp, err := s.deref(raw.(map[string]any))
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	headers, _ := resp["headers"].(map[string]any)
	for name, hraw := range headers {
		hdr, err := s.deref(hraw.(map[string]any))
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		vals := h.Values(name)
		if len(vals) == 0 {
			if req, _ := hdr["required"].(bool); req {
				problems = append(problems, "header "+name+" is required but missing")
			}
			continue
		}
		if sch, ok := hdr["schema"]; ok {
			for _, v := range vals {
				problems = append(problems, s.checkHeaderValue(sch, v, "header "+name)...)
			}
		}
	}
	content, _ := resp["content"].(map[string]any)
	if len(content) == 0 {
		if len(body) != 0 {
			problems = append(problems, fmt.Sprintf("no content is documented, but the body is %q", truncate(body)))
		}
		return problems
	}
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		return append(problems, fmt.Sprintf("Content-Type %q: %v", h.Get("Content-Type"), err))
	}
	media, ok := content[mt]
	if !ok {
		media, ok = content[strings.Split(mt, "/")[0]+"/*"]
	}
	if !ok {
		return append(problems, fmt.Sprintf("Content-Type %s is not documented (documented: %s)", mt, strings.Join(sortedKeys(content), ", ")))
	}
	sch, ok := media.(map[string]any)["schema"]
	if !ok {
		return problems
	}
	if mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		return append(problems, "a schema is documented for "+mt+", which the checks cannot read")
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return append(problems, fmt.Sprintf("body %q is not JSON: %v", truncate(body), err))
	}
	return append(problems, s.validate(sch, v, "body", true)...)
}

// checkHeaderValue validates a header's text against a string or integer
// schema.
func (s *apiSpec) checkHeaderValue(sch any, v, at string) []string {
	var inst any = v
	if m, ok := sch.(map[string]any); ok && m["type"] == "integer" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return []string{fmt.Sprintf("%s: %q is not an integer", at, v)}
		}
		inst = float64(n)
	}
	return s.validate(sch, inst, at, true)
}

// annotations are schema keywords that assert nothing.
var annotations = []string{
	"description", "title", "examples", "example", "default", "deprecated",
	"readOnly", "writeOnly", "$comment", "contentMediaType", "externalDocs",
}

// validate checks instance v (decoded JSON) against schema sch and
// returns the problems, each prefixed with where it is. With closed, an
// object schema that lists properties and says nothing of others refuses
// properties it does not list: a field the server sends must be
// documented. A keyword outside the subset is itself a problem.
func (s *apiSpec) validate(sch any, v any, at string, closed bool) []string {
	switch sch := sch.(type) {
	case bool:
		if !sch {
			return []string{at + ": the schema false allows nothing"}
		}
		return nil
	case map[string]any:
		return s.validateObject(sch, v, at, closed)
	default:
		return []string{fmt.Sprintf("%s: schema is a %T", at, sch)}
	}
}

func (s *apiSpec) validateObject(sch map[string]any, v any, at string, closed bool) []string {
	var problems []string
	fail := func(format string, args ...any) {
		problems = append(problems, at+": "+fmt.Sprintf(format, args...))
	}
	for _, kw := range sortedKeys(sch) {
		arg := sch[kw]
		switch kw {
		case "$ref":
			target, err := s.resolve(arg.(string))
			if err != nil {
				fail("%v", err)
				continue
			}
			problems = append(problems, s.validate(target, v, at, closed)...)
		case "type":
			var types []string
			switch t := arg.(type) {
			case string:
				types = []string{t}
			case []any:
				for _, x := range t {
					types = append(types, x.(string))
				}
			}
			if !slices.ContainsFunc(types, func(t string) bool { return hasType(v, t) }) {
				fail("%s is not of type %s", describe(v), strings.Join(types, " or "))
			}
		case "enum":
			if !slices.ContainsFunc(arg.([]any), func(e any) bool { return reflect.DeepEqual(e, v) }) {
				fail("%s is not one of %v", describe(v), arg)
			}
		case "const":
			if !reflect.DeepEqual(arg, v) {
				fail("%s is not %v", describe(v), arg)
			}
		case "properties", "additionalProperties", "required":
			// with the object checks below
		case "items":
			if arr, ok := v.([]any); ok {
				for i, x := range arr {
					problems = append(problems, s.validate(arg, x, fmt.Sprintf("%s[%d]", at, i), closed)...)
				}
			}
		case "minItems", "maxItems":
			if arr, ok := v.([]any); ok {
				n := int(arg.(float64))
				if (kw == "minItems" && len(arr) < n) || (kw == "maxItems" && len(arr) > n) {
					fail("%d items breaks %s %d", len(arr), kw, n)
				}
			}
		case "pattern":
			if str, ok := v.(string); ok {
				re, err := regexp.Compile(arg.(string))
				if err != nil {
					fail("pattern %q: %v", arg, err)
				} else if !re.MatchString(str) {
					fail("%q does not match %s", str, arg)
				}
			}
		case "minLength", "maxLength":
			if str, ok := v.(string); ok {
				n, l := int(arg.(float64)), len([]rune(str))
				if (kw == "minLength" && l < n) || (kw == "maxLength" && l > n) {
					fail("length %d breaks %s %d", l, kw, n)
				}
			}
		case "minimum", "maximum":
			if f, ok := v.(float64); ok {
				lim := arg.(float64)
				if (kw == "minimum" && f < lim) || (kw == "maximum" && f > lim) {
					fail("%v breaks %s %v", f, kw, lim)
				}
			}
		case "format":
			if str, ok := v.(string); ok && arg == "date-time" {
				if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
					fail("%q is not an RFC 3339 date-time", str)
				}
			}
		case "allOf":
			for i, sub := range arg.([]any) {
				// The parts describe one object together: none is closed.
				problems = append(problems, s.validate(sub, v, fmt.Sprintf("%s (allOf %d)", at, i), false)...)
			}
		case "anyOf", "oneOf":
			matched := 0
			for _, sub := range arg.([]any) {
				if len(s.validate(sub, v, at, closed)) == 0 {
					matched++
				}
			}
			if matched == 0 || (kw == "oneOf" && matched > 1) {
				fail("%s matches %d of the %s schemas", describe(v), matched, kw)
			}
		case "not":
			if len(s.validate(arg, v, at, false)) == 0 {
				fail("%s matches the not schema", describe(v))
			}
		default:
			if !slices.Contains(annotations, kw) {
				fail("schema keyword %q is not supported by the checks in openapi_check_test.go: teach them", kw)
			}
		}
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return problems
	}
	props, _ := sch["properties"].(map[string]any)
	for _, name := range sortedKeys(props) {
		if x, ok := obj[name]; ok {
			problems = append(problems, s.validate(props[name], x, at+"."+name, closed)...)
		}
	}
	if req, ok := sch["required"].([]any); ok {
		for _, name := range req {
			if _, ok := obj[name.(string)]; !ok {
				fail("required property %q is missing", name)
			}
		}
	}
	extra, hasExtra := sch["additionalProperties"]
	if !hasExtra && !(closed && props != nil) {
		return problems
	}
	for _, name := range sortedKeys(obj) {
		if _, ok := props[name]; ok {
			continue
		}
		switch {
		case !hasExtra:
			fail("property %q is not documented", name)
		default:
			problems = append(problems, s.validate(extra, obj[name], at+"."+name, closed)...)
		}
	}
	return problems
}

// hasType reports whether v (decoded JSON) is of JSON Schema type t.
func hasType(v any, t string) bool {
	switch t {
	case "null":
		return v == nil
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "number":
		_, ok := v.(float64)
		return ok
	case "integer":
		f, ok := v.(float64)
		return ok && f == math.Trunc(f)
	case "array":
		_, ok := v.([]any)
		return ok
	case "object":
		_, ok := v.(map[string]any)
		return ok
	}
	return false
}

// describe names a value in messages, shortened.
func describe(v any) string {
	b, _ := json.Marshal(v)
	return truncate(b)
}

func truncate(b []byte) string {
	if len(b) > 120 {
		return string(b[:120]) + "…"
	}
	return string(b)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// specSeen records which operations and statuses the tests of this
// package checked, for the coverage check in TestMain.
var specSeen struct {
	mu  sync.Mutex
	ops map[string]map[int]bool // by operation key
}

// checkSpec holds a response the tests received to the description of
// its operation, failing tb on any mismatch. Requests that no documented
// operation serves (unknown paths, other methods) are not checked here:
// TestOpenAPIMatchesRoutes holds the routes to the description. It
// returns the operation, or nil.
func checkSpec(tb testing.TB, method, target string, status int, h http.Header, body []byte) *specOp {
	tb.Helper()
	s, err := theSpec()
	if err != nil {
		tb.Fatalf("openapi.json: %v", err)
	}
	u, err := url.Parse(target)
	if err != nil {
		tb.Fatalf("request target %q: %v", target, err)
	}
	op := s.operation(method, u.Path)
	if op == nil {
		return nil
	}
	if method == http.MethodHead {
		body = nil
	}
	for _, p := range s.checkResponse(op, status, h, body) {
		tb.Errorf("%s %s answered %d, which /openapi.json (%s) does not describe: %s", method, u.Path, status, op.key(), p)
	}
	specSeen.mu.Lock()
	if specSeen.ops == nil {
		specSeen.ops = map[string]map[int]bool{}
	}
	if specSeen.ops[op.key()] == nil {
		specSeen.ops[op.key()] = map[int]bool{}
	}
	specSeen.ops[op.key()][status] = true
	specSeen.mu.Unlock()
	return op
}

// uncheckedOperations lists the documented operations that no response
// in this test run was checked against.
func uncheckedOperations() []string {
	s, err := theSpec()
	if err != nil {
		return []string{err.Error()}
	}
	specSeen.mu.Lock()
	defer specSeen.mu.Unlock()
	var out []string
	for _, op := range s.ops {
		if len(specSeen.ops[op.key()]) == 0 {
			out = append(out, op.key())
		}
	}
	return out
}

// TestMain runs the tests, then, when every test of the package ran,
// fails unless each operation of /openapi.json had a response checked
// against it: a documented operation needs a test.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 && fullRun() {
		if missing := uncheckedOperations(); len(missing) > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: no api test checked a response of these /openapi.json operations (call them through env.request): %s\n", strings.Join(missing, ", "))
			code = 1
		}
	}
	os.Exit(code)
}

// fullRun reports whether this run includes every test (no -run, -skip,
// -fuzz or -list narrowing it).
func fullRun() bool {
	for _, name := range []string{"test.run", "test.skip", "test.fuzz", "test.list"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return false
		}
	}
	return true
}
