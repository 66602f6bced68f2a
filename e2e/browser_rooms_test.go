package e2e

// Browser tests of the rooms features of the /chat client (issue 14,
// SPEC §8): the directory, DMs, unread badges from the server's read
// state, typing, grouping and day separators, safe links, own presence
// while reconnecting, and a room closed by its access rule. TestBrowser
// runs them.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/chatctl/chatctl/admin"
)

// text returns the text of the first element matching sel.
func (tb *tab) text(t *testing.T, sel string) string {
	t.Helper()
	return get(t, tb, "read "+sel, chromedp.Text(css(sel)))
}

// badge is the unread badge of room in the list sel ("#rooms", "#dms",
// "#directory"): "" when there is none.
func badgeJS(list, room string) string {
	return fmt.Sprintf(`((document.querySelector(%q) || {querySelector: () => null}).querySelector('.unread') || {textContent: ''}).textContent`,
		fmt.Sprintf(`%s li[data-room=%q]`, list, room))
}

// The directory lists what others created, with online counts, private
// flags and unread counts; a click joins, and so does the keyboard.
func testBrowserDirectory(t *testing.T, browser context.Context) {
	srv := newTestServer(t, func(svc *admin.Service) {
		if _, err := svc.CreateRoom(context.Background(), admin.CreateRoomRequest{Name: "secret", Private: true, Members: []string{"alice", "bob"}}); err != nil {
			t.Fatalf("create private room: %v", err)
		}
		if _, err := svc.CreateRoom(context.Background(), admin.CreateRoomRequest{Name: "hidden", Private: true, Members: []string{"alice"}}); err != nil {
			t.Fatalf("create private room: %v", err)
		}
	}, "alice", "bob")
	alice, bob := newTab(t, browser, "alice"), newTab(t, browser, "bob")

	alice.signIn(t, srv.base, "alice")
	alice.join(t, "general")
	alice.join(t, "random")
	alice.send(t, "anyone here?")

	bob.signIn(t, srv.base, "bob")
	bob.do(t, "see the directory",
		chromedp.WaitVisible(css(`#directory li[data-room="general"] button.dir-join`)),
		chromedp.WaitVisible(css(`#directory li[data-room="random"] button.dir-join`)),
		chromedp.WaitVisible(css(`#directory li[data-room="secret"] .private`)),
	)
	listed := get(t, bob, "read the directory", chromedp.Evaluate[[]string](`[...document.querySelectorAll('#directory li')].map((li) => li.dataset.room)`))
	if !slices.Equal(listed, []string{"general", "random", "secret"}) {
		t.Errorf("bob's directory = %q, want general, random, secret (not alice's private room hidden)", listed)
	}
	if got := bob.text(t, `#directory li[data-room="random"] .online`); got != "1 online" {
		t.Errorf("random: online = %q, want \"1 online\"", got)
	}
	bob.waitJS(t, "random's unread count in the directory", badgeJS("#directory", "random")+` === '1'`)
	if got := get(t, bob, "general badge", chromedp.Evaluate[string](badgeJS("#directory", "general"))); got != "" {
		t.Errorf("general has badge %q in the directory, want none (no messages)", got)
	}
	if n := get(t, bob, "joined rooms", chromedp.Evaluate[int](`document.querySelectorAll('#rooms li').length`)); n != 0 {
		t.Errorf("bob has %d rooms before joining any, want 0", n)
	}

	// A click joins random: listed under "Your rooms", on screen, with its
	// history, and read (the badge goes).
	bob.do(t, "join random from the directory",
		chromedp.Click(css(`#directory li[data-room="random"] button.dir-join`)),
		chromedp.WaitVisible(css(`#rooms li[data-room="random"] button.room-select[aria-current="true"]`)),
		chromedp.WaitVisible(css(`#messages li.message[data-from="alice"]`)),
	)
	bob.waitJS(t, "random read", badgeJS("#directory", "random")+` === '' && `+badgeJS("#rooms", "random")+` === ''`)
	alice.do(t, "see bob arrive in random", chromedp.WaitVisible(css(`#members li[data-user="bob"]`)))
	bob.waitJS(t, "random joined in the directory, 2 online", `document.querySelector('#directory li[data-room="random"][data-joined] .online').textContent === '2 online'`)

	// The keyboard: focus the directory entry of general, press Enter.
	bob.do(t, "join general by keyboard",
		chromedp.Focus(css(`#directory li[data-room="general"] button.dir-join`)),
		chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(css(`#rooms li[data-room="general"] button.room-select[aria-current="true"]`)),
		chromedp.WaitEnabled(css("#message-input")),
	)
	if got := bob.text(t, "#room-title"); got != "#general" {
		t.Errorf("room title = %q, want #general", got)
	}
	// The lists are redrawn when a badge changes (or the directory comes
	// again); the keyboard focus stays where it was.
	bob.waitJS(t, "focus on general's entry", `document.activeElement.matches('#rooms li[data-room="general"] button.room-select')`)
	alice.send(t, "still there?") // in random, which bob has in the background
	bob.waitJS(t, "random's badge", badgeJS("#rooms", "random")+` === '1'`)
	if ok := get(t, bob, "focus", chromedp.Evaluate[bool](`document.activeElement.matches('#rooms li[data-room="general"] button.room-select')`)); !ok {
		t.Error("redrawing the room list lost the keyboard focus")
	}
	// Alt+Up opens the room above (random), from the message box too, and
	// reads it.
	bob.do(t, "Alt+Up from the message box",
		chromedp.Focus(css("#message-input")),
		chromedp.KeyEvent(kb.ArrowUp, chromedp.KeyModifiers(chromedp.ModifierAlt)),
		chromedp.WaitVisible(css(`#rooms li[data-room="random"] button.room-select[aria-current="true"]`)),
	)
	bob.waitJS(t, "random read, focus kept", badgeJS("#rooms", "random")+` === '' && document.activeElement.id === 'message-input'`)
	bob.do(t, "Alt+Down back to general",
		chromedp.KeyEvent(kb.ArrowDown, chromedp.KeyModifiers(chromedp.ModifierAlt)),
		chromedp.WaitVisible(css(`#rooms li[data-room="general"] button.room-select[aria-current="true"]`)),
	)
}

// A DM: alice starts it by name, bob finds it among his DMs with an unread
// badge, both see it under the other's name, and they talk.
func testBrowserDM(t *testing.T, browser context.Context) {
	base := startInProcess(t, "alice", "bob")
	alice, bob := newTab(t, browser, "alice"), newTab(t, browser, "bob")
	alice.signIn(t, base, "alice")
	bob.signIn(t, base, "bob")

	const dm = "@alice+bob"
	alice.do(t, "start a DM with bob",
		chromedp.SendKeys(css("#dm-input"), "bob"),
		chromedp.Click(css("#dm-start")),
		chromedp.WaitVisible(css(`#dms li[data-room="`+dm+`"][data-peer="bob"] button.room-select[aria-current="true"]`)),
		chromedp.WaitEnabled(css("#message-input")),
	)
	if got := alice.text(t, `#dms li[data-room="`+dm+`"] .name`); got != "bob" {
		t.Errorf("alice's DM is listed as %q, want bob", got)
	}
	if got := alice.text(t, "#room-title"); got != "Conversation with bob" {
		t.Errorf("alice's title = %q, want \"Conversation with bob\"", got)
	}
	if n := get(t, alice, "rooms", chromedp.Evaluate[int](`document.querySelectorAll('#rooms li').length`)); n != 0 {
		t.Errorf("the DM is listed among alice's rooms too (%d rooms)", n)
	}
	alice.send(t, "psst, bob")

	// Bob has not joined it: the directory brings it, with its unread count.
	bob.do(t, "refresh the directory", chromedp.Click(css("#directory-refresh")))
	bob.do(t, "see the DM", chromedp.WaitVisible(css(`#dms li[data-room="`+dm+`"][data-peer="alice"][data-not-joined]`)))
	bob.waitJS(t, "the DM's unread badge", badgeJS("#dms", dm)+` === '1'`)
	if got := bob.text(t, `#dms li[data-room="`+dm+`"] .name`); got != "alice" {
		t.Errorf("bob's DM is listed as %q, want alice", got)
	}
	if n := get(t, bob, "directory", chromedp.Evaluate[int](`document.querySelectorAll('#directory li[data-room^="@"]').length`)); n != 0 {
		t.Error("the DM is listed in the room directory; want it among the DMs only")
	}
	bob.do(t, "open the DM",
		chromedp.Click(css(`#dms li[data-room="`+dm+`"] button.room-select`)),
		chromedp.WaitVisible(css(`#messages li.message[data-from="alice"]`)),
		chromedp.WaitNotPresent(css(`#dms li[data-room="`+dm+`"][data-not-joined]`)),
	)
	bob.waitJS(t, "the DM read", badgeJS("#dms", dm)+` === ''`)
	bob.send(t, "hi alice")
	alice.do(t, "see bob's answer", chromedp.WaitVisible(css(`#messages li.message[data-from="bob"]`)))
	if got := alice.messages(t); len(got) != 2 || got[0].Text != "psst, bob" || got[1].Text != "hi alice" {
		t.Errorf("alice's DM holds %+v", got)
	}

	// A DM with nobody is refused, and says why.
	alice.do(t, "DM an unknown user",
		chromedp.SendKeys(css("#dm-input"), "zed"),
		chromedp.Click(css("#dm-start")),
	)
	alice.waitJS(t, "the refusal", `document.querySelector('#dm-error').textContent.includes('zed') && !document.querySelector('#dms li[data-room="@alice+zed"]')`)
}

// Unread badges come from the server's read state: bob's messages show as
// unread in both of alice's tabs; reading them in one clears the other.
func testBrowserUnread(t *testing.T, browser context.Context) {
	base := startInProcess(t, "alice", "bob")
	alice1, alice2, bob := newTab(t, browser, "alice1"), newTab(t, browser, "alice2"), newTab(t, browser, "bob")
	for _, a := range []*tab{alice1, alice2} {
		a.signIn(t, base, "alice")
		a.join(t, "general")
		a.join(t, "random") // on screen: general is in the background
	}
	bob.signIn(t, base, "bob")
	bob.join(t, "general")
	bob.send(t, "one")
	bob.send(t, "two")
	for _, a := range []*tab{alice1, alice2} {
		a.waitJS(t, "badge 2 on general", badgeJS("#rooms", "general")+` === '2'`)
	}

	// A reload starts from the server's count, not from zero.
	alice2.do(t, "reload",
		chromedp.Reload(),
		chromedp.WaitReady(css(`#conn-status[data-state="open"]`)),
	)
	alice2.waitJS(t, "badge 2 after the reload", badgeJS("#rooms", "general")+` === '2'`)

	// alice reads general in her first tab: the badge goes there, and the
	// server moves it in the second.
	alice1.do(t, "open general",
		chromedp.Click(css(`#rooms li[data-room="general"] button.room-select`)),
		chromedp.WaitVisible(css(`#messages li.message[data-id="2"]`)),
	)
	alice1.waitJS(t, "general read in tab 1", badgeJS("#rooms", "general")+` === ''`)
	alice2.waitJS(t, "general read in tab 2", badgeJS("#rooms", "general")+` === ''`)

	// With general on screen in tab 1, a new message is read there at once,
	// and so the badge that tab 2 shows for it goes again.
	bob.send(t, "three")
	alice1.do(t, "see three", chromedp.WaitVisible(css(`#messages li.message[data-id="3"]`)))
	alice2.waitJS(t, "three read in tab 2", badgeJS("#rooms", "general")+` === ''`)
	if got := get(t, alice1, "badge in tab 1", chromedp.Evaluate[string](badgeJS("#rooms", "general"))); got != "" {
		t.Errorf("tab 1 shows badge %q on the room on screen", got)
	}
}

// Typing shows "bob is typing…" to the others, never to bob, and goes
// away by itself.
func testBrowserTyping(t *testing.T, browser context.Context) {
	base := startInProcess(t, "alice", "bob")
	alice, bob := newTab(t, browser, "alice"), newTab(t, browser, "bob")
	alice.signIn(t, base, "alice")
	bob.signIn(t, base, "bob")
	alice.join(t, "general")
	bob.join(t, "general")
	alice.do(t, "see bob", chromedp.WaitVisible(css(`#members li[data-user="bob"]`)))

	bob.do(t, "type", chromedp.SendKeys(css("#message-input"), "I am typ"))
	alice.waitJS(t, "typing shown", `document.querySelector('#typing').textContent === 'bob is typing…'`)
	shownAt := time.Now()
	if got := bob.text(t, "#typing"); got != "" {
		t.Errorf("bob sees %q about himself", got)
	}
	alice.waitJS(t, "typing expires", `document.querySelector('#typing').textContent === ''`)
	if d := time.Since(shownAt); d < time.Second {
		t.Errorf("the indicator went after %v, want it shown for about 3 s", d)
	}
	// The message itself ends it at once.
	bob.do(t, "type again", chromedp.SendKeys(css("#message-input"), "ing"))
	alice.waitJS(t, "typing shown again", `document.querySelector('#typing').textContent === 'bob is typing…'`)
	bob.do(t, "send", chromedp.Click(css("#send")))
	alice.waitJS(t, "message ends typing", `document.querySelector('#messages li.message[data-from="bob"]') &&
		document.querySelector('#typing').textContent === ''`)
}

// History written on two days shows a separator per day and groups each
// sender's messages of one minute.
func testBrowserGrouping(t *testing.T, browser context.Context) {
	now := time.Now().UTC()
	day1 := time.Date(now.Year(), now.Month(), now.Day()-3, 12, 0, 0, 0, time.UTC)
	day2 := day1.AddDate(0, 0, 1)
	srv := newTestServer(t, func(svc *admin.Service) {
		for _, m := range []struct {
			from, text string
			ts         time.Time
		}{
			{"alice", "a1", day1.Add(5 * time.Second)},
			{"alice", "a2", day1.Add(40 * time.Second)},
			{"bob", "b1", day1.Add(50 * time.Second)},
			{"bob", "b2", day2.Add(time.Minute)},
			{"bob", "b3", day2.Add(5 * time.Minute)},
		} {
			if _, err := svc.DB().AppendMessage(context.Background(), "history", m.from, m.text, m.ts); err != nil {
				t.Fatalf("append %s: %v", m.text, err)
			}
		}
	}, "alice", "bob")
	alice := newTab(t, browser, "alice")
	alice.signIn(t, srv.base, "alice")
	alice.join(t, "history")
	alice.do(t, "history shown", chromedp.WaitVisible(css(`#messages li.message[data-id="5"]`)))
	alice.send(t, "now")

	got := get(t, alice, "read the list", chromedp.Evaluate[[]string](`[...document.querySelectorAll('#messages > li')].map((li) =>
		li.classList.contains('day-separator') ? 'day ' + li.dataset.day
		: li.querySelector('.text').textContent + (li.classList.contains('continued') ? ' +' : ''))`))
	want := []string{
		"day " + day1.Format(time.DateOnly), "a1", "a2 +", "b1",
		"day " + day2.Format(time.DateOnly), "b2", "b3",
		"day " + now.Format(time.DateOnly), "now",
	}
	if !slices.Equal(got, want) {
		t.Errorf("list = %q, want %q (+ marks a message continuing its group)", got, want)
	}
	// The wording of other days is the browser's locale; today's is fixed.
	if got := alice.text(t, `#messages li.day-separator[data-day="`+now.Format(time.DateOnly)+`"]`); got != "Today" {
		t.Errorf("today's separator says %q, want Today", got)
	}
	// A continued message hides its name and time; the first of a group shows them.
	hidden := get(t, alice, "meta shown", chromedp.Evaluate[[]bool](`[...document.querySelectorAll('#messages li.message')].map((li) => getComputedStyle(li.querySelector('.meta')).display === 'none')`))
	if !slices.Equal(hidden, []bool{false, true, false, false, false, false}) {
		t.Errorf("meta hidden per message = %v, want only a2's", hidden)
	}
}

// Text that looks like markup shows as text and runs nothing; only the
// https URL becomes a link, opened safely.
func testBrowserLinks(t *testing.T, browser context.Context) {
	base := startInProcess(t, "alice", "bob")
	alice, bob := newTab(t, browser, "alice"), newTab(t, browser, "bob")
	alice.signIn(t, base, "alice")
	bob.signIn(t, base, "bob")
	alice.join(t, "general")
	bob.join(t, "general")

	const nasty = `<script>window.__xss=1</script> <img src=x onerror="window.__xss=2"> ` +
		`javascript:window.__xss=3 &amp; &lt;b&gt;bold&lt;/b&gt; <a href="javascript:window.__xss=4">x</a> ` +
		`see https://example.com/a?b=1&c=2#top. done`
	alice.send(t, nasty)
	bob.do(t, "receive", chromedp.WaitVisible(css(`#messages li.message[data-from="alice"]`)))
	for _, tb := range []*tab{alice, bob} {
		var got struct {
			Text   string              `json:"text"`
			XSS    bool                `json:"xss"`
			Markup int                 `json:"markup"`
			Links  []map[string]string `json:"links"`
		}
		raw := get(t, tb, "inspect the message", chromedp.Evaluate[string](`JSON.stringify((() => {
			const p = document.querySelector('#messages li.message[data-from="alice"] .text');
			return {
				text: p.textContent,
				xss: '__xss' in window,
				markup: p.querySelectorAll(':not(a)').length,
				links: [...p.querySelectorAll('a')].map((a) => ({href: a.getAttribute('href'), text: a.textContent, rel: a.rel, target: a.target})),
			};
		})())`))
		if err := json.Unmarshal([]byte(raw), &got); err != nil {
			t.Fatal(err)
		}
		if got.Text != nasty {
			t.Errorf("%s: text shown = %q, want it literally: %q", tb.name, got.Text, nasty)
		}
		if got.XSS {
			t.Errorf("%s: the message ran script", tb.name)
		}
		if got.Markup != 0 {
			t.Errorf("%s: the message made %d elements other than links", tb.name, got.Markup)
		}
		want := []map[string]string{{"href": "https://example.com/a?b=1&c=2#top", "text": "https://example.com/a?b=1&c=2#top", "rel": "noopener noreferrer", "target": "_blank"}}
		if fmt.Sprint(got.Links) != fmt.Sprint(want) {
			t.Errorf("%s: links = %v, want %v", tb.name, got.Links, want)
		}
	}
	if xss := get(t, bob, "global", chromedp.Evaluate[bool](`'__xss' in window || !!document.querySelector('#messages img, #messages script')`)); xss {
		t.Error("bob's page ran or holds the injected markup")
	}
}

// While its socket is down the client shows the user offline, in the
// members list and the top bar, and online again once reconnected.
func testBrowserOffline(t *testing.T, browser context.Context) {
	srv := newTestServer(t, nil, "alice")
	alice := newTab(t, browser, "alice")
	alice.signIn(t, srv.base, "alice")
	alice.join(t, "general")
	alice.do(t, "online", chromedp.WaitVisible(css(`#members li[data-user="alice"][data-presence="online"]`)),
		chromedp.WaitReady(css(`#whoami[data-presence="online"]`)))

	srv.stop(t)
	alice.do(t, "offline while reconnecting",
		chromedp.WaitReady(css(`#conn-status[data-state="waiting"]`)),
		chromedp.WaitVisible(css(`#members li[data-user="alice"][data-presence="offline"]`)),
		chromedp.WaitReady(css(`#whoami[data-presence="offline"]`)),
	)
	if got := alice.text(t, `#members li[data-user="alice"]`); !strings.Contains(got, "offline") {
		t.Errorf("own member entry = %q, want it to say offline", got)
	}

	srv.start(t)
	alice.do(t, "online again",
		chromedp.WaitReady(css(`#conn-status[data-state="open"]`)),
		chromedp.WaitVisible(css(`#members li[data-user="alice"][data-presence="online"]`)),
		chromedp.WaitReady(css(`#whoami[data-presence="online"]`)),
	)
	alice.send(t, "back")
}

// An access rule that takes a room away closes it in the client, with a
// notice, and the directory no longer lists it.
func testBrowserForbidden(t *testing.T, browser context.Context) {
	srv := newTestServer(t, nil, "alice", "root:admin")
	alice := newTab(t, browser, "alice")
	alice.signIn(t, srv.base, "alice")
	alice.join(t, "general")
	alice.join(t, "ops")
	alice.do(t, "ops listed", chromedp.WaitVisible(css(`#directory li[data-room="ops"]`)))

	token := passwordToken(t, srv.base, "root")
	body, _ := json.Marshal(map[string]string{"user": "alice", "pattern": "ops", "permission": "deny"})
	req, err := http.NewRequest(http.MethodPut, srv.base+"/admin/access", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("PUT /admin/access: %s", res.Status)
	}

	alice.do(t, "ops closed",
		chromedp.WaitNotPresent(css(`#rooms li[data-room="ops"]`)),
		chromedp.WaitVisible(css(`#banner[data-kind="left"]`)),
		chromedp.WaitNotPresent(css(`#directory li[data-room="ops"]`)),
	)
	if got := alice.text(t, "#banner-text"); !strings.Contains(got, "#ops") || !strings.Contains(got, "no longer have access") {
		t.Errorf("notice = %q", got)
	}
	if got := alice.text(t, "#room-title"); got != "#general" {
		t.Errorf("on screen after ops closed: %q, want #general", got)
	}
}

// passwordToken signs user in with POST /token and returns the access token.
func passwordToken(t *testing.T, base, user string) string {
	t.Helper()
	res, err := http.PostForm(base+"/token", url.Values{"grant_type": {"password"}, "username": {user}, "password": {browserPassword}})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("POST /token for %s: %s %v", user, res.Status, err)
	}
	return tok.AccessToken
}
