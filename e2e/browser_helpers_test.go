package e2e

// Helpers for the browser tests in browser_test.go: an in-process server,
// a headless Chromium driven with chromedp, and one tab per simulated user.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/chatctl/chatctl/admin"
	"github.com/chatctl/chatctl/api"
	"github.com/chatctl/chatctl/configs"
)

// browserPassword is the password of every user of the browser tests, and
// browserHash its bcrypt hash at cost 10 (the least configs allows). Users
// are created with the hash so that no test waits for bcrypt twice: hashing
// is slow under -race, and signing in hashes again anyway.
const (
	browserPassword = "password123"
	browserHash     = "$2a$10$GwhelNVvSxFKhmhIU3nfh.HRL9gFWkxnxbfDRkPsIedgBXWpdJnES"
)

// stepTimeout bounds one step (a few actions) of a browser test. Waits in
// the steps are on DOM conditions, never on the clock; this is only the
// upper bound after which the step fails.
// It is generous because signing in runs bcrypt, which is slow under -race
// on a busy machine.
const stepTimeout = 30 * time.Second

// startInProcess starts api.Serve on a free port with a fresh store that
// holds users (all with browserPassword), and returns the base URL. The
// server drains when the test ends.
func startInProcess(t *testing.T, users ...string) string {
	t.Helper()
	return newTestServer(t, nil, users...).base
}

// testServer is an in-process server that a test can stop and start
// again on the same address and store (to drop every connection).
type testServer struct {
	cfg  *configs.Config
	addr string // 127.0.0.1:PORT, the same across restarts
	base string // "http://" + addr

	cancel context.CancelFunc // stops the running server; nil when stopped
	done   chan error         // api.Serve's result
}

// newTestServer makes the store with users (role user; a name given as
// "name:admin" gets role admin), runs setup on it (may be nil) before the
// server opens it, and starts the server.
func newTestServer(t *testing.T, setup func(*admin.Service), users ...string) *testServer {
	t.Helper()
	dir := t.TempDir()
	cfg := configs.Default()
	cfg.DB = filepath.Join(dir, "c.db")
	cfg.Listen = "127.0.0.1:0"
	cfg.Password.BcryptCost = configs.MinBcryptCost
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}

	svc, err := admin.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		name, role, ok := strings.Cut(u, ":")
		if !ok {
			role = "user"
		}
		if _, err := svc.AddUser(context.Background(), admin.AddUserRequest{Name: name, Hash: browserHash, Role: role}); err != nil {
			svc.Close()
			t.Fatalf("add user %s: %v", name, err)
		}
	}
	if setup != nil {
		setup(svc)
	}
	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}
	s := &testServer{cfg: cfg}
	t.Cleanup(func() { s.stop(t) })
	s.start(t)
	return s
}

// start runs the server (again, on the address it had, after a stop).
func (s *testServer) start(t *testing.T) {
	t.Helper()
	var out io.Writer = io.Discard
	if testing.Verbose() {
		out = os.Stderr
	}
	logger := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	if s.addr != "" {
		s.cfg.Listen = s.addr // a restart listens where the browser expects the server
	}
	cfg := s.cfg
	go func() {
		done <- api.Serve(ctx, cfg, logger, api.ServeOptions{Ready: func(addr string) { ready <- addr }})
	}()
	s.cancel, s.done = cancel, done
	select {
	case addr := <-ready:
		s.addr, s.base = addr, "http://"+addr
	case err := <-done:
		s.cancel = nil
		t.Fatalf("server did not start: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatal("server did not start within 15 s")
	}
}

// stop drains the server (its sockets close with 1001) and waits for it.
func (s *testServer) stop(t *testing.T) {
	t.Helper()
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("server shutdown: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Error("server did not drain within 15 s")
	}
}

// chromiumPath finds the browser: $CHATCTL_CHROMIUM if set, else chromium
// on PATH or at /usr/bin/chromium (Debian's package). Without one the test
// is skipped, except under CI (CI set), where a missing browser fails it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	names := []string{"chromium", "chromium-browser", "/usr/bin/chromium"}
	if p := os.Getenv("CHATCTL_CHROMIUM"); p != "" {
		names = []string{p}
	}
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := fmt.Sprintf("Chromium not found as %s (install it with: apt-get install -y chromium, or set CHATCTL_CHROMIUM)", strings.Join(names, ", "))
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// newBrowser starts a headless Chromium with a fresh profile and returns
// a chromedp context bound to its first tab; tabs made from it with newTab
// share the process but not cookies or storage.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox, // tests may run as root (containers)
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1100, 700),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first Run starts the browser and binds it to its context, which
	// must not carry a deadline: bound it from the outside.
	bounded(t, "start Chromium", func() error { return chromedp.Do(ctx) })
	return ctx
}

// bounded runs f and fails the test if it fails or takes more than 30 s
// (f is then left running; the test's cleanups cancel its context).
func bounded(t *testing.T, what string, f func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: no answer within 30 s", what)
	}
}

// tab is one simulated user: a tab in its own browser context (separate
// cookies, localStorage and sessionStorage).
type tab struct {
	name   string
	ctx    context.Context
	cancel context.CancelFunc
	closed bool

	mu  sync.Mutex
	log []string // console output, exceptions, failed requests, HTTP errors
}

// newTab opens a tab in a new browser context of browser. If the test
// fails, a screenshot of the tab is saved and its path logged.
func newTab(t *testing.T, browser context.Context, name string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	tb := &tab{name: name, ctx: ctx, cancel: cancel}
	t.Cleanup(tb.close)
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		tb.mu.Lock()
		for _, l := range tb.log {
			t.Logf("%s's page: %s", tb.name, l)
		}
		tb.mu.Unlock()
		if !tb.closed {
			tb.screenshot(t)
		}
	})
	// The first Run attaches to the new tab and binds the tab's life to its
	// context, so it must not carry a deadline: bound it from the outside.
	bounded(t, "open a tab for "+name, func() error { return chromedp.Do(ctx) })
	if err := chromedp.Listen(ctx, tb.record); err != nil {
		t.Fatal(err)
	}
	// Every tab behaves as the focused window of its user (headless tabs
	// otherwise lose focus to each other, and the client marks a room read
	// only while its window has focus), and shows times in UTC, so that
	// day separators fall where the tests put them.
	tb.do(t, "emulate focus and UTC", chromedp.Func(func(ctx context.Context, tt *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tt, emulation.SetFocusEmulationEnabled, emulation.SetFocusEmulationEnabledParams{Enabled: true}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tt, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "UTC"})
		return err
	}))
	return tb
}

// record keeps what the page reports, for the log of a failed test. It
// runs on chromedp's reading goroutine, so it only appends.
func (tb *tab) record(ev any) {
	var line string
	switch e := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		var args []string
		for _, a := range e.Args {
			switch {
			case len(a.Value) > 0:
				args = append(args, string(a.Value))
			default:
				args = append(args, a.Description)
			}
		}
		line = fmt.Sprintf("console.%s: %s", e.Type, strings.Join(args, " "))
	case *runtime.EventExceptionThrown:
		line = "uncaught: " + (&chromedp.ExceptionError{ExceptionDetails: e.ExceptionDetails}).Error()
	case *cdplog.EventEntryAdded:
		if e.Entry.Level == cdplog.EntryLevelVerbose {
			return
		}
		line = fmt.Sprintf("%s %s: %s %s", e.Entry.Source, e.Entry.Level, e.Entry.Text, e.Entry.URL)
	case *network.EventLoadingFailed:
		line = fmt.Sprintf("request failed: %s %s", e.ErrorText, e.BlockedReason)
	case *network.EventResponseReceived:
		if e.Response.Status < 400 {
			return
		}
		line = fmt.Sprintf("HTTP %d %s", e.Response.Status, e.Response.URL)
	default:
		return
	}
	tb.mu.Lock()
	tb.log = append(tb.log, line)
	tb.mu.Unlock()
}

// close closes the tab (and disposes its browser context).
func (tb *tab) close() {
	tb.closed = true
	tb.cancel()
}

// screenshot saves a full-page PNG of the tab under $CHATCTL_SCREENSHOTS,
// or else a new folder under the system temp dir (t.TempDir would be
// deleted with the test, taking the evidence with it), and logs the path.
func (tb *tab) screenshot(t *testing.T) {
	dir, err := screenshotDir()
	if err != nil {
		t.Logf("screenshot of %s: %v", tb.name, err)
		return
	}
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("screenshot of %s: %v", tb.name, err)
		return
	}
	safe := regexp.MustCompile(`[^A-Za-z0-9._-]+`).ReplaceAllString(t.Name()+"-"+tb.name, "_")
	path := filepath.Join(dir, safe+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Logf("screenshot of %s: %v", tb.name, err)
		return
	}
	t.Logf("screenshot of %s's tab after the failure: %s", tb.name, path)
}

// screenshotDir is where failure screenshots go: $CHATCTL_SCREENSHOTS, or
// one new folder under the system temp dir for the whole run.
var screenshotDir = sync.OnceValues(func() (string, error) {
	if dir := os.Getenv("CHATCTL_SCREENSHOTS"); dir != "" {
		return dir, os.MkdirAll(dir, 0o755)
	}
	return os.MkdirTemp("", "chatctl-screenshots-")
})

// do runs the actions within stepTimeout and fails the test with what
// says which step of which user broke.
func (tb *tab) do(t *testing.T, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %s: %v%s", tb.name, what, err, tb.pageState())
	}
}

// get runs one action that returns a value, like do.
func get[T any](t *testing.T, tb *tab, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %s: %v%s", tb.name, what, err, tb.pageState())
	}
	return v
}

// pageState describes the chat page for a failure message: connection
// state, banner and form errors, so a timeout says more than "deadline
// exceeded".
func (tb *tab) pageState() string {
	ctx, cancel := context.WithTimeout(tb.ctx, 2*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => {
		const q = (s) => document.querySelector(s);
		const parts = [location.pathname];
		for (const [k, s] of [['status', '#conn-status'], ['banner', '#banner-text'], ['signin-error', '#signin-error'],
		                      ['room-error', '#room-error'], ['send-error', '#send-error']]) {
			const e = q(s);
			if (e && e.textContent.trim()) parts.push(k + '=' + JSON.stringify(e.textContent.trim()));
		}
		const st = q('#conn-status');
		if (st) parts.push('data-state=' + st.dataset.state);
		return parts.join(' ');
	})()`))
	if err != nil || s == "" {
		return ""
	}
	return " (page: " + s + ")"
}

// css is shorthand for a CSS selector (the first element that matches).
func css(sel string) chromedp.CSS { return chromedp.CSS(sel) }

// signIn loads /chat/ and signs in through the form, then waits for the
// socket to open.
func (tb *tab) signIn(t *testing.T, base, user string) {
	t.Helper()
	tb.do(t, "sign in as "+user,
		chromedp.Navigate(base+"/chat/"),
		chromedp.WaitVisible(css("#signin-form")),
		chromedp.SendKeys(css("#username"), user),
		chromedp.SendKeys(css("#password"), browserPassword),
		chromedp.Click(css("#signin")),
		chromedp.WaitVisible(css("#chat-view")),
		chromedp.WaitReady(css(`#conn-status[data-state="open"]`)),
	)
}

// join joins room with the form and waits for the room to be listed and
// open for writing.
func (tb *tab) join(t *testing.T, room string) {
	t.Helper()
	tb.do(t, "join "+room,
		chromedp.SendKeys(css("#room-input"), room),
		chromedp.Click(css("#join")),
		chromedp.WaitVisible(css(fmt.Sprintf(`#rooms li[data-room=%q]`, room))),
		chromedp.WaitEnabled(css("#message-input")),
	)
}

// send posts text in the open room and waits until the server acked it:
// the pending item is gone and the message is listed with an id.
func (tb *tab) send(t *testing.T, text string) {
	t.Helper()
	tb.do(t, "send "+text,
		chromedp.SendKeys(css("#message-input"), text),
		chromedp.Click(css("#send")),
	)
	tb.waitJS(t, "ack of "+text, fmt.Sprintf(`!document.querySelector('#pending li') &&
		[...document.querySelectorAll('#messages li.message[data-self][data-id]')].some((li) => li.querySelector('.text').textContent === %q)`, text))
}

// waitJS waits until the JavaScript expression is truthy.
func (tb *tab) waitJS(t *testing.T, what, expr string) {
	t.Helper()
	tb.do(t, what, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(stepTimeout), chromedp.WithPollingMutation()))
}

// shownMessage is a message as the chat page lists it.
type shownMessage struct {
	ID   string `json:"id"`
	From string `json:"from"`
	Text string `json:"text"`
	Self bool   `json:"self"`
}

// messages returns the messages listed in the open room, in DOM order.
func (tb *tab) messages(t *testing.T) []shownMessage {
	t.Helper()
	return get(t, tb, "read messages", chromedp.Evaluate[[]shownMessage](`[...document.querySelectorAll('#messages li.message')].map((li) => ({
		id: li.dataset.id || '', from: li.dataset.from || '', text: li.querySelector('.text').textContent, self: 'self' in li.dataset,
	}))`))
}

// members returns the users listed in the members panel.
func (tb *tab) members(t *testing.T) []string {
	t.Helper()
	return get(t, tb, "read members", chromedp.Evaluate[[]string](`[...document.querySelectorAll('#members li[data-user]')].map((li) => li.dataset.user)`))
}

// tryItOut makes sure "Try it out" is on for the Swagger UI operation op
// (tryItOutEnabled turns it on by default; a click does otherwise).
func (tb *tab) tryItOut(t *testing.T, op string) {
	t.Helper()
	on := get(t, tb, "is Try it out on", chromedp.Evaluate[bool](fmt.Sprintf(`!!document.querySelector(%q)`, op+" .execute")))
	if !on {
		tb.do(t, "click Try it out", chromedp.Click(css(op+" .try-out__btn")), chromedp.WaitVisible(css(op+" .execute")))
	}
}

// fill replaces the value of the input sel by typing text, as a user
// would (React sees the key events), and checks the field took it.
func (tb *tab) fill(t *testing.T, sel, text string) {
	t.Helper()
	tb.do(t, "fill "+sel, tb.selectAll(sel), chromedp.SendKeys(css(sel), text))
	tb.checkValue(t, sel, text)
}

// paste replaces the value of the input sel with text in one go, as a
// paste from the clipboard does (one input event, no key events): typing a
// long token key by key through React is slow.
func (tb *tab) paste(t *testing.T, sel, text string) {
	t.Helper()
	tb.do(t, "paste into "+sel, tb.selectAll(sel), chromedp.Func(func(ctx context.Context, tt *chromedp.Target) error {
		_, err := cdp.Call(ctx, tt, input.InsertText, input.InsertTextParams{Text: text})
		return err
	}))
	tb.checkValue(t, sel, text)
}

// selectAll focuses the input sel and selects its content, so that what
// comes next replaces it.
func (tb *tab) selectAll(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.WaitVisible(css(sel)),
		chromedp.Func(func(ctx context.Context, tt *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool](fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.focus(); e.select(); return true; })()`, sel))(ctx, tt)
			return err
		}),
	)
}

func (tb *tab) checkValue(t *testing.T, sel, want string) {
	t.Helper()
	if v := get(t, tb, "read "+sel, chromedp.Value(css(sel))); v != want {
		t.Fatalf("%s: %s holds %q, want %q", tb.name, sel, v, want)
	}
}

// liveResponse returns the status and body that Swagger UI shows for the
// last execution of the operation op.
func (tb *tab) liveResponse(t *testing.T, op string) (status, body string) {
	t.Helper()
	r := get(t, tb, "read the response", chromedp.Evaluate[[]string](fmt.Sprintf(`(() => {
		const row = document.querySelector(%q);
		const st = row.querySelector('.response-col_status');
		const b = row.querySelector('.response-col_description .highlight-code pre');
		return [st ? st.textContent.trim() : '', b ? b.textContent : ''];
	})()`, op+" .live-responses-table tr.response")))
	return r[0], r[1]
}

// assertFits checks that the page does not scroll sideways and that each
// element is shown and lies within the viewport's width.
func (tb *tab) assertFits(t *testing.T, what string, sels ...string) {
	t.Helper()
	list, _ := json.Marshal(sels)
	problems := get(t, tb, "measure "+what, chromedp.Evaluate[[]string](fmt.Sprintf(`(() => {
		const w = window.innerWidth, out = [];
		if (document.documentElement.scrollWidth > w) out.push('page is ' + document.documentElement.scrollWidth + ' px wide in a ' + w + ' px viewport');
		for (const s of %s) {
			const e = document.querySelector(s);
			if (!e) { out.push(s + ' missing'); continue; }
			const r = e.getBoundingClientRect();
			if (r.width === 0 || r.height === 0) out.push(s + ' not shown');
			else if (r.left < 0 || r.right > w + 0.5) out.push(s + ' spans x ' + Math.round(r.left) + '..' + Math.round(r.right) + ' of ' + w);
		}
		return out;
	})()`, list)))
	for _, p := range problems {
		t.Errorf("%s: %s: %s", tb.name, what, p)
	}
}
