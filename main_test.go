package main

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rogpeppe/go-internal/testscript"
	bolt "go.etcd.io/bbolt"
)

// TestMain lets the scripts run the real chatctl (and the helper programs
// below) as separate processes: testscript re-executes this test binary
// under each name.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"chatctl": main,
		"locker":  lockerMain,
	})
}

// Ensure every CLI command behaves as SPEC §2-4 promises, black-box,
// through the scripts in testdata/script.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		Setup:               setupEnv,
		Condition:           scriptCondition,
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"capture":  cmdCapture,
			"forge":    cmdForge,
			"json":     cmdJSON,
			"waitfile": cmdWaitFile,
			"within":   cmdWithin,
			"garbage":  cmdGarbage,
			"truncate": cmdTruncate,
			"flip":     cmdFlip,
			"subst":    cmdSubst,
			"mode":     cmdMode,
			"helptree": cmdHelpTree,
			"pgdb":     cmdPGDB,
			"messages": cmdMessages,
		},
	})
}

// setupEnv makes each script hermetic: no CHATCTL_* from the host, HOME in
// $WORK, local time in UTC, and the cheapest bcrypt cost chatctl accepts.
func setupEnv(e *testscript.Env) error {
	vars := e.Vars[:0]
	for _, kv := range e.Vars {
		if !strings.HasPrefix(kv, "CHATCTL_") && !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "TZ=") {
			vars = append(vars, kv)
		}
	}
	e.Vars = vars
	e.Setenv("HOME", e.WorkDir)
	e.Setenv("TZ", "UTC")
	e.Setenv("CHATCTL_PASSWORD_BCRYPT_COST", "10")
	if e.Getenv("GORACE") == "" {
		// Under -race every process would otherwise sleep 1s on exit.
		e.Setenv("GORACE", "atexit_sleep_ms=0")
	}
	return nil
}

// lockerMain is the "locker" program: locker DB MARKER opens the bbolt file
// DB the way any bbolt user would (no chatctl socket), writes MARKER once it
// holds the lock, and keeps it until interrupted or killed.
func lockerMain() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: locker DB MARKER")
		os.Exit(2)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	db, err := bolt.Open(os.Args[1], 0o600, &bolt.Options{Timeout: 10 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, "locker:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(os.Args[2], []byte("locked\n"), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "locker:", err)
		os.Exit(1)
	}
	<-sig
	if err := db.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "locker:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// cmdCapture: capture VAR [FILE [JSONPATH]] sets $VAR to the trimmed
// contents of FILE (default stdout), or to the value at JSONPATH in it (see
// json), so that a token or a kid can be passed on.
func cmdCapture(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 || len(args) > 3 {
		ts.Fatalf("usage: capture VAR [FILE [JSONPATH]]")
	}
	file := "stdout"
	if len(args) >= 2 {
		file = args[1]
	}
	v := strings.TrimSpace(ts.ReadFile(file))
	if len(args) == 3 {
		doc := parseJSON(ts, file)
		x, ok := jsonAt(doc, args[2])
		if !ok {
			ts.Fatalf("capture: %s has no %s", file, args[2])
		}
		v = jsonString(x)
	}
	if v == "" {
		ts.Fatalf("capture: %s is empty", file)
	}
	ts.Setenv(args[0], v)
}

// cmdWaitFile: waitfile PATH [TIMEOUT] polls until PATH exists, failing
// after TIMEOUT (default 10s). Never a fixed sleep.
func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: waitfile PATH [TIMEOUT]")
	}
	timeout := 10 * time.Second
	if len(args) == 2 {
		d, err := time.ParseDuration(args[1])
		ts.Check(err)
		timeout = d
	}
	path := ts.MkAbs(args[0])
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("waitfile: %s did not appear within %s", args[0], timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// cmdWithin: [!] within DURATION PROG ARGS... runs PROG like exec (stdout
// and stderr are kept for the next commands) and fails when it takes longer
// than DURATION. The ! applies to PROG's exit status, not to the time.
func cmdWithin(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: [!] within DURATION PROG [ARGS...]")
	}
	limit, err := time.ParseDuration(args[0])
	ts.Check(err)
	start := time.Now()
	err = ts.Exec(args[1], args[2:]...)
	took := time.Since(start)
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		ts.Fatalf("within: cannot run %s: %v", args[1], err) // not a failure of PROG
	}
	ts.Logf("[took %s]", took.Round(time.Millisecond))
	if took > limit {
		ts.Fatalf("%s took %s, more than %s", args[1], took.Round(time.Millisecond), limit)
	}
	switch {
	case err != nil && !neg:
		ts.Fatalf("unexpected command failure: %v", err)
	case err == nil && neg:
		ts.Fatalf("unexpected command success")
	}
}

// cmdSubst: subst OLD NEW IN OUT copies IN (or stdout) to OUT with the
// first OLD replaced by NEW, failing when IN has no OLD.
func cmdSubst(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 4 {
		ts.Fatalf("usage: subst OLD NEW IN OUT")
	}
	in := ts.ReadFile(args[2])
	if !strings.Contains(in, args[0]) {
		ts.Fatalf("subst: %s has no %q", args[2], args[0])
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[3]), []byte(strings.Replace(in, args[0], args[1], 1)), 0o600))
}

// cmdMode: mode FILE PERM checks FILE's permission bits, e.g. 0600.
func cmdMode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: mode FILE PERM")
	}
	want, err := strconv.ParseUint(args[1], 8, 32)
	ts.Check(err)
	fi, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	if got := fi.Mode().Perm(); got != os.FileMode(want) {
		ts.Fatalf("mode: %s is %#o, want %#o", args[0], got, want)
	}
}

// cmdHelpTree: helptree PROG walks PROG's commands through "--help" (the
// "Available Commands:" sections) and checks that every one exits 0 and
// shows an "Examples:" section. Cobra's own completion and help commands
// are left out. New commands are covered without editing any script.
func cmdHelpTree(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: helptree PROG")
	}
	var walk func(path []string)
	count := 0
	walk = func(path []string) {
		count++
		if err := ts.Exec(args[0], append(append([]string{}, path...), "--help")...); err != nil {
			ts.Fatalf("%s %s --help: %v", args[0], strings.Join(path, " "), err)
		}
		out := ts.ReadFile("stdout")
		if !strings.Contains(out, "\nExamples:\n") {
			ts.Fatalf("%s %s --help has no Examples: section", args[0], strings.Join(path, " "))
		}
		_, list, ok := strings.Cut(out, "\nAvailable Commands:\n")
		if !ok {
			return
		}
		list, _, _ = strings.Cut(list, "\n\n")
		for _, line := range strings.Split(list, "\n") {
			name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
			if name == "" || name == "help" || name == "completion" {
				continue
			}
			walk(append(append([]string{}, path...), name))
		}
	}
	walk(nil)
	ts.Logf("[%d commands have examples]", count)
}

// cmdGarbage: garbage FILE SIZE writes SIZE pseudo-random bytes (fixed seed).
func cmdGarbage(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: garbage FILE SIZE")
	}
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	r := mrand.New(mrand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), b, 0o600))
}

// cmdTruncate: truncate FILE SIZE.
func cmdTruncate(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: truncate FILE SIZE")
	}
	n, err := strconv.ParseInt(args[1], 10, 64)
	ts.Check(err)
	ts.Check(os.Truncate(ts.MkAbs(args[0]), n))
}

// cmdFlip: flip FILE OFFSET inverts every bit from OFFSET to the end.
func cmdFlip(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: flip FILE OFFSET")
	}
	off, err := strconv.Atoi(args[1])
	ts.Check(err)
	path := ts.MkAbs(args[0])
	b, err := os.ReadFile(path)
	ts.Check(err)
	for i := off; i < len(b); i++ {
		b[i] ^= 0xff
	}
	ts.Check(os.WriteFile(path, b, 0o600))
}

// cmdJSON: [!] json FILE PATH [REGEXP] parses FILE (or stdout/stderr) as
// JSON and checks that the value at PATH exists and, with REGEXP, matches
// it. PATH is '/'-separated (keys may hold dots: token.ttl/source); a
// number indexes an array, '#' is the length of an array or object, and
// '.' is the whole document. Strings match without quotes, other values as
// compact JSON. With !, the value must be missing or not match.
func cmdJSON(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 || len(args) > 3 {
		ts.Fatalf("usage: [!] json FILE PATH [REGEXP]")
	}
	v, found := jsonAt(parseJSON(ts, args[0]), args[1])
	if !found {
		if !neg {
			ts.Fatalf("json: %s has no %s", args[0], args[1])
		}
		return
	}
	s := jsonString(v)
	match := true
	if len(args) == 3 {
		re, err := regexp.Compile(args[2])
		ts.Check(err)
		match = re.MatchString(s)
	}
	switch {
	case match && neg:
		ts.Fatalf("json: %s %s is %s", args[0], args[1], s)
	case !match && !neg:
		ts.Fatalf("json: %s %s is %s, want a match for %s", args[0], args[1], s, args[2])
	}
}

// parseJSON reads file (or stdout/stderr) as exactly one JSON value.
func parseJSON(ts *testscript.TestScript, file string) any {
	dec := json.NewDecoder(strings.NewReader(ts.ReadFile(file)))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		ts.Fatalf("json: %s is not JSON: %v", file, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		ts.Fatalf("json: %s holds more than one JSON value", file)
	}
	return doc
}

func jsonAt(v any, path string) (any, bool) {
	if path == "." {
		return v, true
	}
	for _, seg := range strings.Split(path, "/") {
		switch x := v.(type) {
		case map[string]any:
			if seg == "#" {
				v = json.Number(strconv.Itoa(len(x)))
				continue
			}
			var ok bool
			if v, ok = x[seg]; !ok {
				return nil, false
			}
		case []any:
			if seg == "#" {
				v = json.Number(strconv.Itoa(len(x)))
				continue
			}
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

func jsonString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// cmdForge: forge KIND IN OUT reads a token issued by chatctl from IN (a
// file, or stdout) and writes a forged variant to OUT:
//
//	none        alg "none", unsigned ("h.c.")
//	hs512       HS512 header (wrong algorithm)
//	rs256       RS256, signed with a fresh RSA key (wrong algorithm)
//	tampered    claims changed (role admin), original signature
//	foreign     same kid, re-signed with a random secret (bad signature)
//	unknownkid  kid changed, re-signed with a random secret (unknown key)
//	nokid       kid removed (unknown key)
//
// With CHATCTL_JWT_SECRET set in the script, the helper knows the key and
// also writes correctly signed tokens:
//
//	resign      identical claims (a control that must stay valid)
//	expired     iat and exp in the past
//	future      iat in the future
//	nbf         nbf in the future
//	issuer      iss "evil"
//	nojti       no jti
func cmdForge(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: forge KIND IN OUT")
	}
	kind, raw := args[0], strings.TrimSpace(ts.ReadFile(args[1]))
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		ts.Fatalf("forge: %s does not hold a JWT", args[1])
	}
	header := decodePart(ts, parts[0])
	claims := decodePart(ts, parts[1])
	now := time.Now().Unix()

	// sign signs header+claims with alg and key (the header's alg is
	// replaced by the method's).
	sign := func(m jwt.SigningMethod, key any) string {
		tok := jwt.NewWithClaims(m, jwt.MapClaims(claims))
		for k, v := range header {
			if k != "alg" {
				tok.Header[k] = v
			}
		}
		s, err := tok.SignedString(key)
		ts.Check(err)
		return s
	}
	randomKey := func() []byte {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		return b
	}
	secret := func() []byte {
		s := ts.Getenv("CHATCTL_JWT_SECRET")
		if s == "" {
			ts.Fatalf("forge %s: set CHATCTL_JWT_SECRET so the helper knows the key", kind)
		}
		return []byte(s)
	}

	var out string
	switch kind {
	case "none":
		header["alg"] = "none"
		out = encodePart(ts, header) + "." + parts[1] + "."
	case "hs512":
		out = sign(jwt.SigningMethodHS512, randomKey())
	case "rs256":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		ts.Check(err)
		out = sign(jwt.SigningMethodRS256, k)
	case "tampered":
		claims["role"] = "admin"
		out = parts[0] + "." + encodePart(ts, claims) + "." + parts[2]
	case "foreign":
		out = sign(jwt.SigningMethodHS256, randomKey())
	case "unknownkid":
		header["kid"] = "forged00"
		out = sign(jwt.SigningMethodHS256, randomKey())
	case "nokid":
		delete(header, "kid")
		out = sign(jwt.SigningMethodHS256, randomKey())
	case "resign":
		out = sign(jwt.SigningMethodHS256, secret())
	case "expired":
		claims["iat"], claims["exp"] = now-7200, now-3600
		out = sign(jwt.SigningMethodHS256, secret())
	case "future":
		claims["iat"], claims["exp"] = now+3600, now+7200
		out = sign(jwt.SigningMethodHS256, secret())
	case "nbf":
		claims["nbf"] = now + 3600
		out = sign(jwt.SigningMethodHS256, secret())
	case "issuer":
		claims["iss"] = "evil"
		out = sign(jwt.SigningMethodHS256, secret())
	case "nojti":
		delete(claims, "jti")
		out = sign(jwt.SigningMethodHS256, secret())
	default:
		ts.Fatalf("forge: unknown kind %q", kind)
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[2]), []byte(out+"\n"), 0o600))
}

func decodePart(ts *testscript.TestScript, seg string) map[string]any {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	ts.Check(err)
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	m := map[string]any{}
	ts.Check(dec.Decode(&m))
	return m
}

func encodePart(ts *testscript.TestScript, m map[string]any) string {
	b, err := json.Marshal(m)
	ts.Check(err)
	return base64.RawURLEncoding.EncodeToString(b)
}
