//go:build unix

package main

import (
	"bufio"
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer collects a subprocess's output while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitUntil polls cond every 10ms until it holds, failing after 15s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// hermeticEnv is the environment of a chatctl subprocess: no CHATCTL_*
// from the host, the cheapest bcrypt cost, no exit delay under -race.
func hermeticEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CHATCTL_") && !strings.HasPrefix(kv, "GORACE=") {
			env = append(env, kv)
		}
	}
	return append(append(env, "CHATCTL_PASSWORD_BCRYPT_COST=10", "GORACE=atexit_sleep_ms=0"), extra...)
}

// Ensure SIGHUP makes a real `chatctl serve` re-read its config file: the
// new log format and level and CORS origin take effect
// without a restart, the log names each change and the keys that need a
// restart, and a file that does not validate changes nothing. (The
// login limit's effect is checked in package api, TestReload: a failed
// login here costs seconds of bcrypt under the race detector.)
func TestServeSIGHUP(t *testing.T) {
	dir, err := os.MkdirTemp("", "chatctl") // short: the socket path has a length limit
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	conf := filepath.Join(dir, "chatctl.yaml")
	db := filepath.Join(dir, "c.db")
	writeConf := func(body string) {
		t.Helper()
		if err := os.WriteFile(conf, []byte("db: "+db+"\n"+body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeConf("listen: 127.0.0.1:0\nlog:\n  format: text\n  level: info\n")

	cmd := exec.Command("chatctl", "--config", conf, "serve")
	cmd.Env = hermeticEnv()
	var stderr syncBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "chatctl listening on http://"); ok {
				addr, _, _ := strings.Cut(rest, " ")
				addrc <- addr
			}
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})
	var base string
	select {
	case addr := <-addrc:
		base = "http://" + addr
	case err := <-exited:
		t.Fatalf("serve exited: %v\n%s", err, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not start\n%s", stderr.String())
	}

	const app = "https://app.example"
	corsHeader := func() string {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
		req.Header.Set("Origin", app)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header.Get("Access-Control-Allow-Origin")
	}
	if got := corsHeader(); got != "" {
		t.Fatalf("CORS before the reload: %q", got)
	}
	waitUntil(t, "the start-up log", func() bool { return strings.Contains(stderr.String(), `level=INFO msg="chatctl serving"`) })

	writeConf(`listen: 127.0.0.1:1
log:
  format: json
  level: debug
cors:
  origins: [` + app + `]
login:
  ip_burst: 1
`)
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the reload's log line", func() bool { return strings.Contains(stderr.String(), `"msg":"config reloaded"`) })
	waitUntil(t, "the restart warning", func() bool {
		return strings.Contains(stderr.String(), `"msg":"config keys changed that need a restart to take effect"`)
	})
	logs := stderr.String()
	for _, want := range []string{
		`"changed":"login.ip_burst: 20 → 1; cors.origins: [] → [` + app + `]; log.format: text → json; log.level: info → debug"`,
		`"keys":"listen"`,
		`"changes":"listen: 127.0.0.1:0 → 127.0.0.1:1"`,
		`"file":"` + conf + `"`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s\n%s", want, logs)
		}
	}
	if got := corsHeader(); got != app {
		t.Errorf("CORS after the reload = %q, want %s", got, app)
	}

	// A file that does not validate: logged, the running config stays.
	writeConf("listen: 127.0.0.1:0\nlog:\n  level: loud\n")
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the failed reload", func() bool {
		return strings.Contains(stderr.String(), `"msg":"config reload failed; the running configuration stays"`)
	})
	if !strings.Contains(stderr.String(), `log.level: must be debug, info, warn or error, got \"loud\"`) {
		t.Errorf("the failure does not name the key:\n%s", stderr.String())
	}
	if got := corsHeader(); got != app {
		t.Errorf("CORS after a failed reload = %q, want %s (unchanged)", got, app)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("serve after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop on SIGTERM")
	}
}
