package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatctl/chatctl/configs"
)

// stormConfig is a production bcrypt cost and budgets no storm exhausts.
func stormConfig(c *configs.Config) {
	c.Password.BcryptCost = configs.MinBcryptCost
	c.Login.IPBurst, c.Login.UserBurst = 1000, 1000
}

// Ensure a storm of logins at a real bcrypt cost cannot starve /users/me:
// while 20 logins hash, /users/me keeps answering 200, and every login
// still gets its right answer (6 logins under -race, where bcrypt is
// slow). Latencies are logged, not asserted; the benchmarks below measure
// them.
func TestLoginStormDoesNotStarveMe(t *testing.T) {
	if testing.Short() {
		t.Skip("bcrypt at cost 10")
	}
	e := newEnv(t, stormConfig)
	e.addUser("alice", "")
	tok := e.issue("alice")
	client := e.ts.Client()

	logins := 20
	if raceEnabled {
		logins = 6 // still three per hash worker on two cores, queued
	}
	var wg sync.WaitGroup
	var stormDone atomic.Bool
	results := make(chan string, logins)
	for i := range logins {
		wg.Go(func() {
			pw := testPassword
			want := http.StatusOK
			if i%2 == 1 {
				pw, want = "wrong password", http.StatusUnauthorized
			}
			resp, err := client.PostForm(e.ts.URL+"/token", loginForm("alice", pw))
			if err != nil {
				results <- err.Error()
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != want {
				results <- fmt.Sprintf("login %d: %d, want %d", i, resp.StatusCode, want)
			}
		})
	}
	go func() {
		wg.Wait()
		stormDone.Store(true)
		close(results)
	}()

	var during []time.Duration // /users/me answered while logins were in progress
	// A paced reader, as real traffic is: a busy loop at nice 0 would
	// itself starve the hash workers at nice 10 and only slow the test.
	pace := time.NewTicker(5 * time.Millisecond)
	defer pace.Stop()
	for ; !stormDone.Load(); <-pace.C {
		start := time.Now()
		req, _ := http.NewRequest(http.MethodGet, e.ts.URL+"/users/me", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"username":"alice"`) {
			t.Fatalf("/users/me during the storm = %d %s", resp.StatusCode, body)
		}
		if !stormDone.Load() {
			during = append(during, time.Since(start))
		}
	}
	for msg := range results {
		t.Error(msg)
	}
	if len(during) == 0 {
		t.Fatal("no /users/me answer completed while the logins ran")
	}
	slices.Sort(during)
	t.Logf("/users/me during %d logins at cost %d: %d answers, median %v, max %v",
		logins, e.cfg.Password.BcryptCost, len(during), during[len(during)/2], during[len(during)-1])
}

// BenchmarkUsersMe measures GET /users/me through the real handler and a
// real listener, from parallel clients.
func BenchmarkUsersMe(b *testing.B) {
	e := newEnv(b, nil)
	e.addUser("alice", "")
	tok := e.issue("alice")
	client := e.ts.Client()
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req, _ := http.NewRequest(http.MethodGet, e.ts.URL+"/users/me", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		for pb.Next() {
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

// BenchmarkLogin measures a successful password login (POST /token) at
// the lowest production bcrypt cost.
func BenchmarkLogin(b *testing.B) {
	e := newEnv(b, stormConfig)
	e.addUser("alice", "")
	client := e.ts.Client()
	form := url.Values{"username": {"alice"}, "password": {testPassword}}.Encode()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		resp, err := client.Post(e.ts.URL+"/token", "application/x-www-form-urlencoded", strings.NewReader(form))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

// Ensure the adaptive pool adds one P while bcrypt work is in flight and
// gives it back once idle, and that a queued job is skipped for a client
// that left.
func TestHashPoolProcs(t *testing.T) {
	base := runtime.GOMAXPROCS(0)
	p := newHashPool(1, 4, true)
	defer p.close()
	release := make(chan struct{})
	started := make(chan struct{})
	go p.do(context.Background(), func() { close(started); <-release })
	<-started
	if got := runtime.GOMAXPROCS(0); got != base+1 {
		t.Fatalf("GOMAXPROCS = %d during bcrypt work, want %d", got, base+1)
	}
	// A second job waits in the queue; its client gives up.
	ctx, cancel := context.WithCancel(context.Background())
	ran := false
	errc := make(chan error)
	go func() { errc <- p.do(ctx, func() { ran = true }) }()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("abandoned job: %v", err)
	}
	close(release)
	deadline := time.Now().Add(5 * procsIdle)
	for runtime.GOMAXPROCS(0) != base {
		if time.Now().After(deadline) {
			t.Fatalf("GOMAXPROCS still %d after the pool went idle, want %d", runtime.GOMAXPROCS(0), base)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
	if ran {
		t.Fatal("a job whose client left still ran")
	}
}
