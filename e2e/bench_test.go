package e2e

import (
	"encoding/json"
	"strconv"
	"testing"
)

// Ensure each bench subcommand runs end to end against a real server,
// provisioning its users through the admin socket, and reports sane JSON.
func TestBenchCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a server and load for a few seconds")
	}
	dir := t.TempDir()
	srv := startServer(t, dir)
	url := "--url=" + srv.url("")
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, r map[string]any)
	}{
		{"http", []string{"bench", "http", url, "-c", "4", "-d", "1s", "-o", "json"}, func(t *testing.T, r map[string]any) {
			if r["ok"].(float64) == 0 || r["errors"].(float64) != 0 {
				t.Errorf("http: %v", r)
			}
		}},
		{"login", []string{"bench", "login", url, "-c", "2", "-d", "1s", "-o", "json"}, func(t *testing.T, r map[string]any) {
			if r["ok"].(float64) == 0 || r["errors"].(float64) != 0 {
				t.Errorf("login: %v", r)
			}
		}},
		{"conns", []string{"bench", "conns", url, "-n", "40", "--rate", "200", "-d", "1s", "--server-pid", strconv.Itoa(srv.cmd.Process.Pid), "-o", "json"}, func(t *testing.T, r map[string]any) {
			if r["opened"].(float64) != 40 || r["failed"].(float64) != 0 || r["server_rss_per_conn_bytes"] == nil {
				t.Errorf("conns: %v", r)
			}
		}},
		{"fanout", []string{"bench", "fanout", url, "--members", "20", "--rate", "20", "-d", "1s", "-o", "json"}, func(t *testing.T, r map[string]any) {
			rounds := r["rounds"].([]any)
			round := rounds[0].(map[string]any)
			if round["delivered"].(float64) == 0 || round["lost"].(float64) != 0 || round["out_of_order"].(float64) != 0 {
				t.Errorf("fanout: %v", round)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, stderr, err := chatctl(t, dir, "", tc.args...)
			if err != nil {
				t.Fatalf("%v: %v\n%s", tc.args, err, stderr)
			}
			var r map[string]any
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, out)
			}
			tc.check(t, r)
		})
	}
	// A server that is down is a clear one-line error.
	_, stderr, err := chatctl(t, dir, "", "bench", "http", "--url=http://127.0.0.1:1", "--token=x", "-d", "1s")
	if err == nil || len(stderr) == 0 || stderr[:7] != "error: " {
		t.Fatalf("bench against a closed port: %v %q", err, stderr)
	}
}
