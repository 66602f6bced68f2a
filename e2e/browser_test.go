package e2e

// Browser tests: the /chat client and the /docs walkthrough in a real
// headless Chromium (chromedp) against an in-process server. They skip
// when Chromium is missing, except under CI (CI set), where that fails.
// Run only these with
//
//	go test ./e2e/ -run Browser
//
// A failing test logs what its pages reported and saves a screenshot of
// each tab ($CHATCTL_SCREENSHOTS, else a new folder in the temp dir).
// CHATCTL_UPDATE_SCREENSHOT=1 rewrites docs/chat.png, the README's picture.

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowser starts one Chromium and runs the browser tests in parallel
// in it, each with its own server and its own browser contexts.
func TestBrowser(t *testing.T) {
	browser := newBrowser(t)
	t.Run("Chat", func(t *testing.T) { t.Parallel(); testBrowserChat(t, browser) })
	t.Run("Reload", func(t *testing.T) { t.Parallel(); testBrowserReload(t, browser) })
	t.Run("Docs", func(t *testing.T) { t.Parallel(); testBrowserDocs(t, browser) })
	t.Run("Layout", func(t *testing.T) { t.Parallel(); testBrowserLayout(t, browser) })
	t.Run("Directory", func(t *testing.T) { t.Parallel(); testBrowserDirectory(t, browser) })
	t.Run("DM", func(t *testing.T) { t.Parallel(); testBrowserDM(t, browser) })
	t.Run("Unread", func(t *testing.T) { t.Parallel(); testBrowserUnread(t, browser) })
	t.Run("Typing", func(t *testing.T) { t.Parallel(); testBrowserTyping(t, browser) })
	t.Run("Grouping", func(t *testing.T) { t.Parallel(); testBrowserGrouping(t, browser) })
	t.Run("Links", func(t *testing.T) { t.Parallel(); testBrowserLinks(t, browser) })
	t.Run("Offline", func(t *testing.T) { t.Parallel(); testBrowserOffline(t, browser) })
	t.Run("Forbidden", func(t *testing.T) { t.Parallel(); testBrowserForbidden(t, browser) })
}

// Two users in two browser contexts: presence both ways, messages both
// ways, and the member list shrinks when one leaves the room and again
// when one closes the tab.
func testBrowserChat(t *testing.T, browser context.Context) {
	base := startInProcess(t, "alice", "bob")
	alice, bob := newTab(t, browser, "alice"), newTab(t, browser, "bob")

	alice.signIn(t, base, "alice")
	bob.signIn(t, base, "bob")
	alice.join(t, "general")
	bob.join(t, "general")

	// Presence: each lists the other (and themself).
	alice.do(t, "see bob join", chromedp.WaitVisible(css(`#members li[data-user="bob"]`)))
	bob.do(t, "see alice", chromedp.WaitVisible(css(`#members li[data-user="alice"]`)))
	for _, tb := range []*tab{alice, bob} {
		if got := tb.members(t); !slices.Contains(got, "alice") || !slices.Contains(got, "bob") || len(got) != 2 {
			t.Errorf("%s: members = %q, want alice and bob", tb.name, got)
		}
		if n := get(t, tb, "member count", chromedp.Text(css("#member-count"))); n != "2" {
			t.Errorf("%s: #member-count = %q, want 2", tb.name, n)
		}
	}

	// Messages, alice to bob, then bob to alice.
	alice.send(t, "hello bob")
	bob.do(t, "receive alice's message", chromedp.WaitVisible(css(`#messages li.message[data-from="alice"]`)))
	if got := get(t, bob, "read alice's message", chromedp.Text(css(`#messages li.message[data-from="alice"] .text`))); got != "hello bob" {
		t.Errorf("bob sees %q from alice, want %q", got, "hello bob")
	}
	bob.send(t, "hi alice")
	alice.do(t, "receive bob's message", chromedp.WaitVisible(css(`#messages li.message[data-from="bob"]`)))
	want := []shownMessage{
		{ID: "1", From: "alice", Text: "hello bob"},
		{ID: "2", From: "bob", Text: "hi alice"},
	}
	for _, tb := range []*tab{alice, bob} {
		got := tb.messages(t)
		if len(got) != len(want) {
			t.Fatalf("%s: messages = %+v, want %+v", tb.name, got, want)
		}
		for i, m := range got {
			w := want[i]
			w.Self = w.From == tb.name
			if m != w {
				t.Errorf("%s: message %d = %+v, want %+v", tb.name, i, m, w)
			}
		}
	}
	// The screen-reader feed announces the other user's last message.
	alice.waitJS(t, "live region", `document.querySelector('#live').textContent.includes('bob') &&
		document.querySelector('#live').textContent.includes('hi alice')`)

	// Bob leaves the room: alice sees him go; bob no longer lists it.
	bob.do(t, "leave general",
		chromedp.Click(css(`#rooms li[data-room="general"] button.leave`)),
		chromedp.WaitNotPresent(css(`#rooms li[data-room="general"]`)),
	)
	alice.do(t, "see bob leave", chromedp.WaitNotPresent(css(`#members li[data-user="bob"]`)))
	if got := alice.members(t); !slices.Equal(got, []string{"alice"}) {
		t.Errorf("alice: members after bob left = %q, want [alice]", got)
	}

	// He comes back, then closes his tab: the socket closes and alice sees
	// him go again.
	bob.join(t, "general")
	alice.do(t, "see bob rejoin", chromedp.WaitVisible(css(`#members li[data-user="bob"]`)))
	bob.close()
	alice.do(t, "see bob's tab close", chromedp.WaitNotPresent(css(`#members li[data-user="bob"]`)))
}

// A reload keeps the user signed in (session in sessionStorage) and the
// re-join replays the room's history: the same messages, once each.
func testBrowserReload(t *testing.T, browser context.Context) {
	base := startInProcess(t, "alice", "bob")
	alice, bob := newTab(t, browser, "alice"), newTab(t, browser, "bob")

	alice.signIn(t, base, "alice")
	bob.signIn(t, base, "bob")
	alice.join(t, "general")
	bob.join(t, "general")
	alice.send(t, "before the reload")
	bob.send(t, "me too")
	alice.do(t, "receive bob's message", chromedp.WaitVisible(css(`#messages li.message[data-from="bob"]`)))
	before := alice.messages(t)
	if len(before) != 2 {
		t.Fatalf("messages before the reload = %+v, want 2", before)
	}
	if ok := get(t, alice, "read sessionStorage", chromedp.Evaluate[bool](`!!sessionStorage.getItem('chatctl.session')`)); !ok {
		t.Fatal("no chatctl.session in sessionStorage after signing in")
	}

	alice.do(t, "reload",
		chromedp.Reload(),
		chromedp.WaitVisible(css("#chat-view")),
		chromedp.WaitReady(css(`#conn-status[data-state="open"]`)),
		chromedp.WaitVisible(css(`#rooms li[data-room="general"]`)),
		chromedp.WaitVisible(css(`#messages li.message[data-id="2"]`)),
	)
	if hidden := get(t, alice, "sign-in view", chromedp.Evaluate[bool](`document.querySelector('#signin-view').hidden`)); !hidden {
		t.Error("the sign-in form is shown after a reload; want the chat")
	}
	if after := alice.messages(t); !slices.Equal(after, before) {
		t.Errorf("messages after the reload = %+v, want %+v", after, before)
	}
	// Back in the room for real: presence and sending work after the reload.
	alice.do(t, "members after the reload", chromedp.WaitVisible(css(`#members li[data-user="bob"]`)))
	alice.send(t, "after the reload")
	bob.do(t, "receive the message sent after the reload",
		chromedp.WaitVisible(css(`#messages li.message[data-id="3"][data-from="alice"]`)))
}

// The seed's walkthrough in Swagger UI: POST /token with Try it out, paste
// the access_token into Authorize (bearerAuth), GET /users/me.
func testBrowserDocs(t *testing.T, browser context.Context) {
	base := startInProcess(t, "alice")
	tb := newTab(t, browser, "docs")
	// Swagger UI names each operation's block after its tag and
	// operationId (api/openapi.json).
	const (
		token = "#operations-default-token"
		me    = "#operations-default-getMe"
	)
	tb.do(t, "open /docs",
		chromedp.Navigate(base+"/docs/"),
		chromedp.WaitVisible(css(token+" .opblock-summary")),
		chromedp.WaitVisible(css(me+" .opblock-summary")),
	)

	// POST /token: expand; "Try it out" is on already (tryItOutEnabled),
	// so click it only if the page shows it.
	tb.do(t, "expand POST /token",
		chromedp.Click(css(token+" .opblock-summary-control")),
		chromedp.WaitVisible(css(token+" .opblock-body")),
	)
	tb.tryItOut(t, token)
	tb.fill(t, token+` tr[data-property-name="username"] input`, "alice")
	tb.fill(t, token+` tr[data-property-name="password"] input`, browserPassword)
	tb.do(t, "execute POST /token",
		chromedp.Click(css(token+" .execute")),
		chromedp.WaitVisible(css(token+" .live-responses-table .response-col_status")),
	)
	status, body := tb.liveResponse(t, token)
	if status != "200" {
		t.Fatalf("POST /token in Swagger UI: status %q, body %s", status, body)
	}
	// The OpenAPI default picks the password grant; no one has to choose it.
	if curl := get(t, tb, "read the curl command", chromedp.Text(css(token+" .curl-command"))); !strings.Contains(curl, "grant_type=password") {
		t.Errorf("POST /token was sent without grant_type=password; curl: %s", curl)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := json.Unmarshal([]byte(body), &tok); err != nil || tok.AccessToken == "" || tok.TokenType != "bearer" {
		t.Fatalf("POST /token response body %q: %v", body, err)
	}

	// Authorize: paste the token into the bearerAuth scheme.
	const bearer = `.auth-container:has(#auth-bearer-value)`
	tb.do(t, "open Authorize",
		chromedp.Click(css("#swagger-ui .btn.authorize")),
		chromedp.WaitVisible(css(".modal-ux #auth-bearer-value")),
	)
	tb.paste(t, "#auth-bearer-value", tok.AccessToken)
	tb.do(t, "authorize bearerAuth",
		chromedp.Click(css(bearer+" button.authorize")),
		// Authorized: the value field gives way to a Logout button.
		chromedp.WaitNotPresent(css("#auth-bearer-value")),
		chromedp.WaitVisible(css(`.auth-container button.btn-done`)),
	)
	tb.do(t, "close Authorize",
		chromedp.Click(css(`.auth-container button.btn-done`)),
		chromedp.WaitNotPresent(css(".modal-ux")),
	)

	// GET /users/me with the bearer token.
	tb.do(t, "expand GET /users/me",
		chromedp.Click(css(me+" .opblock-summary-control")),
		chromedp.WaitVisible(css(me+" .opblock-body")),
	)
	tb.tryItOut(t, me)
	tb.do(t, "execute GET /users/me",
		chromedp.Click(css(me+" .execute")),
		chromedp.WaitVisible(css(me+" .live-responses-table .response-col_status")),
	)
	status, body = tb.liveResponse(t, me)
	if status != "200" || !strings.Contains(body, "You are authenticated!") || !strings.Contains(body, `"alice"`) {
		t.Errorf("GET /users/me in Swagger UI: status %q, body %s; want 200 and \"You are authenticated!\" for alice", status, body)
	}
	// Swagger UI shows the curl it ran: the token went as a bearer header.
	curl := get(t, tb, "read the curl command", chromedp.Text(css(me+" .curl-command")))
	if !strings.Contains(curl, "Authorization: Bearer "+tok.AccessToken) {
		t.Errorf("the request did not carry the pasted token; curl: %s", curl)
	}
}

// The sign-in form and the chat fit a phone; a desktop-sized chat with two
// rooms, a DM and unread badges is what docs/chat.png shows (rewritten with
// CHATCTL_UPDATE_SCREENSHOT=1).
func testBrowserLayout(t *testing.T, browser context.Context) {
	base := startInProcess(t, "alice", "bob")
	alice, bob := newTab(t, browser, "alice"), newTab(t, browser, "bob")

	// Phone: 375 x 800, as a touch device honouring the viewport meta tag.
	alice.do(t, "phone viewport",
		chromedp.EmulateViewport(375, 800, chromedp.EmulateMobile, chromedp.EmulateTouch),
		chromedp.Navigate(base+"/chat/"),
		chromedp.WaitVisible(css("#signin-form")),
		chromedp.WaitVisible(css("#username")),
		chromedp.WaitVisible(css("#password")),
		chromedp.WaitVisible(css("#signin")),
	)
	alice.assertFits(t, "sign-in on a phone", "#username", "#password", "#signin")
	alice.signIn(t, base, "alice")
	alice.join(t, "general")
	alice.assertFits(t, "chat on a phone", "#message-input", "#send", "#room-input", "#rooms", "#directory-panel")
	if open := get(t, alice, "members panel", chromedp.Evaluate[bool](`document.querySelector('#members-panel').open`)); open {
		t.Error("members panel is unfolded on a phone; want it folded")
	}
	if open := get(t, alice, "directory panel", chromedp.Evaluate[bool](`document.querySelector('#directory-panel').open`)); open {
		t.Error("the room directory is unfolded on a phone; want it folded")
	}

	// Desktop: the picture for the README: two rooms, a DM and unread
	// badges beside the conversation on screen.
	alice.do(t, "desktop viewport", chromedp.EmulateViewport(1100, 700))
	alice.waitJS(t, "members panel unfolds", `document.querySelector('#members-panel').open && document.querySelector('#directory-panel').open`)
	alice.join(t, "random")
	alice.do(t, "back to general", chromedp.Click(css(`#rooms li[data-room="general"] button.room-select`)))
	bob.signIn(t, base, "bob")
	bob.join(t, "general")
	alice.do(t, "see bob", chromedp.WaitVisible(css(`#members li[data-user="bob"]`)))
	alice.send(t, "Morning! Is the release still on for today?")
	alice.send(t, "The notes are at https://example.com/release-notes")
	bob.do(t, "receive", chromedp.WaitVisible(css(`#messages li.message[data-id="2"]`)))
	bob.send(t, "Yes, tagging v1.0 after lunch.")
	alice.send(t, "Great, I'll update the changelog.")
	alice.do(t, "see bob's reply", chromedp.WaitVisible(css(`#messages li.message[data-from="bob"]`)))
	bob.join(t, "random")
	bob.send(t, "Lunch at 12:30?")
	bob.do(t, "DM alice",
		chromedp.SendKeys(css("#dm-input"), "alice"),
		chromedp.Click(css("#dm-start")),
		chromedp.WaitEnabled(css("#message-input")),
	)
	bob.send(t, "Can you look at my PR before the tag?")
	bob.send(t, "It is the small one.")
	alice.waitJS(t, "random's badge", badgeJS("#rooms", "random")+` === '1'`)
	alice.do(t, "refresh the directory", chromedp.Click(css("#directory-refresh")))
	alice.waitJS(t, "the DM's badge", badgeJS("#dms", "@alice+bob")+` === '2'`)
	bob.do(t, "back to general and type",
		chromedp.Click(css(`#rooms li[data-room="general"] button.room-select`)),
		chromedp.WaitEnabled(css("#message-input")),
		chromedp.SendKeys(css("#message-input"), "Sure"),
	)
	alice.waitJS(t, "bob is typing", `document.querySelector('#typing').textContent === 'bob is typing…'`)
	alice.assertFits(t, "chat on a desktop", "#message-input", "#send", "#members-panel", "#rooms", "#dms", "#directory")

	png := get(t, alice, "screenshot", chromedp.CaptureScreenshot())
	if os.Getenv("CHATCTL_UPDATE_SCREENSHOT") != "1" {
		return
	}
	path := filepath.Join("..", "docs", "chat.png")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d bytes)", path, len(png))
}
