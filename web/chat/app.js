// The chat client: glues the session (tokens), the connection (WebSocket)
// and room state to the view. Protocol: SPEC §6.
import { Session } from './session.js';
import { Connection } from './socket.js';
import { Room, ROOM_RE, MAX_TEXT_BYTES, HISTORY_PAGE, textBytes } from './rooms.js';
import * as view from './view.js';

const { el } = view;

// Which rooms are open survives a reload (with the tokens, see session.js);
// messages do not: re-joining loads the latest history again.
const ROOMS_KEY = 'chatctl.rooms';

const state = {
  session: null, // Session while signed in
  conn: null, // Connection while signed in
  rooms: new Map(), // name -> Room, in the order joined
  active: '', // name of the room on screen
  refSeq: 0,
};

const me = () => (state.session ? state.session.username : '');
const activeRoom = () => state.rooms.get(state.active) || null;

// ---- Signing in and out ----------------------------------------------------

el.signinForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const username = el.username.value.trim();
  const password = el.password.value;
  if (!username || !password) {
    el.signinError.textContent = 'Enter a username and a password.';
    (username ? el.password : el.username).focus();
    return;
  }
  el.signinButton.disabled = true;
  el.signinForm.setAttribute('aria-busy', 'true');
  el.signinError.textContent = '';
  try {
    const s = await Session.signIn(username, password, sessionHooks());
    el.password.value = '';
    enter(s, [], '');
  } catch (err) {
    el.signinError.textContent = err.message;
    el.password.focus();
    el.password.select();
  } finally {
    el.signinButton.disabled = false;
    el.signinForm.removeAttribute('aria-busy');
  }
});

el.signout.addEventListener('click', () => leaveChat(''));

function sessionHooks() {
  return {
    // A live socket keeps working with a new token only if we say so.
    onRefreshed: (s) => {
      if (state.conn) state.conn.send({ type: 'auth', token: s.access });
      view.hideBanner('token_expired');
    },
    onEnded: (why) => leaveChat(why),
  };
}

// enter shows the chat for a signed-in session and connects.
function enter(session, roomNames, active) {
  state.session = session;
  state.rooms = new Map(roomNames.filter((n) => ROOM_RE.test(n)).map((n) => [n, new Room(n)]));
  state.active = state.rooms.has(active) ? active : (state.rooms.keys().next().value || '');
  view.showSignedIn(session.username);
  view.renderRooms(state.rooms, state.active);
  view.renderRoom(activeRoom(), me());
  state.conn = new Connection({
    getToken: (force) => {
      const s = state.session;
      if (!s) return Promise.reject(Object.assign(new Error('signed out'), { fatal: true }));
      return force ? s.refresh() : s.fresh();
    },
    probe,
    onOpen,
    onFrame,
    onState,
    onDrop,
    onRevoked: (why) => leaveChat(why),
  });
  state.conn.start();
  (activeRoom() ? el.messageInput : el.roomInput).focus();
}

// leaveChat signs out (why explains it on the sign-in form, if not by choice).
function leaveChat(why) {
  if (!state.session && !state.conn) return; // re-entered via Session.onEnded
  const { session, conn } = state;
  state.session = state.conn = null;
  if (conn) conn.stop();
  if (session) session.end();
  state.rooms = new Map();
  state.active = '';
  try { sessionStorage.removeItem(ROOMS_KEY); } catch { /* ignore */ }
  view.renderRooms(state.rooms, '');
  view.renderRoom(null, '');
  view.showSignedIn('');
  view.hideBanner();
  view.setStatus('closed');
  el.signinError.textContent = why;
  (el.username.value ? el.password : el.username).focus();
}

async function probe(token) {
  try {
    const res = await fetch('/users/me', { headers: { Authorization: 'Bearer ' + token }, cache: 'no-store', credentials: 'omit' });
    return res.status;
  } catch {
    return 0;
  }
}

// ---- Connection events -----------------------------------------------------

function onState(st, message, retryAt) {
  view.setStatus(st);
  if (st === 'open') {
    view.hideBanner('offline');
    view.hideBanner('too_many');
  } else if (st === 'waiting') {
    const secs = Math.max(1, Math.round((retryAt - Date.now()) / 1000));
    view.showBanner(`${message} Retrying in ${secs} s.`, 'offline', { reconnect: true, dismissable: false });
  } else if (st === 'stopped') {
    view.showBanner(message, 'too_many', { reconnect: true, dismissable: false });
  }
}

// onOpen re-joins every room; "since" makes the server replay exactly what
// we missed, and Room.add drops anything we already have.
function onOpen() {
  for (const room of state.rooms.values()) sendJoin(room);
}

// onDrop runs when a socket goes away: a send without an ack may or may not
// have been stored, which the next "joined" replay tells us.
function onDrop() {
  for (const room of state.rooms.values()) {
    room.joined = false;
    room.loadingOlder = false;
    for (const p of room.pending.values()) if (p.state === 'sending') p.state = 'unconfirmed';
  }
  const room = activeRoom();
  view.renderPending(room);
  view.renderHistoryEdge(room);
}

function sendJoin(room) {
  const frame = { type: 'join', room: room.name, ref: 'join:' + room.name };
  room.joinSince = room.everJoined ? room.lastId : null;
  if (room.joinSince !== null) frame.since = room.joinSince;
  state.conn.send(frame);
}

function onFrame(f) {
  const room = typeof f.room === 'string' ? state.rooms.get(f.room) : null;
  switch (f.type) {
    case 'joined': if (room) onJoined(room, f); break;
    case 'message': if (room) onMessage(room, f); break;
    case 'ack': if (room) onAck(room, f); break;
    case 'history': if (room) onHistory(room, f); break;
    case 'presence':
      if (!room || typeof f.user !== 'string') break;
      if (f.event === 'join') room.members.add(f.user);
      else if (f.event === 'leave') room.members.delete(f.user);
      if (room.name === state.active) view.renderMembers(room);
      break;
    case 'error': onError(f); break;
    // pong: its arrival already counted as a sign of life.
  }
}

function onJoined(room, f) {
  const first = room.joinSince === null;
  const isActive = room.name === state.active;
  room.members = new Set(Array.isArray(f.members) ? f.members : []);
  let unseen = 0;
  for (const m of Array.isArray(f.messages) ? f.messages : []) {
    if (!room.add(m)) continue;
    if (isActive && !first) view.insertMessage(room, m, me());
    if (!first && m.from !== me()) unseen++;
  }
  room.joined = room.everJoined = true;
  reconcilePending(room);
  if (!first) {
    const gap = room.gapAbove(room.joinSince);
    if (gap) requestGap(room, gap);
  }
  if (isActive) {
    if (first) view.renderRoom(room, me());
    else { view.renderMembers(room); view.renderPending(room); view.renderHistoryEdge(room); }
  } else if (unseen) {
    room.unread += unseen;
    view.renderRooms(state.rooms, state.active);
  }
}

// reconcilePending decides, after a (re)join, what to do with each unsent
// message. An "unconfirmed" one whose text now appears from us after the
// point where it was sent did reach the store: drop it rather than send a
// duplicate. Everything else is (re)sent.
function reconcilePending(room) {
  for (const p of room.pending.values()) {
    if (p.state === 'unconfirmed') {
      const id = room.ids.find((i) => i > p.sentAfter && !room.mine.has(i) &&
        room.byId.get(i).from === me() && room.byId.get(i).text === p.text);
      if (id) {
        room.mine.add(id);
        room.pending.delete(p.ref);
        continue;
      }
    }
    if (p.state !== 'failed') trySend(room, p);
  }
}

function requestGap(room, gap) {
  const upTo = room.nextAfter(gap); // the first id we have above the hole
  const limit = Math.min(100, upTo - gap);
  state.conn.send({ type: 'history', room: room.name, before: upTo, limit, ref: 'gap:' + room.name });
}

function onMessage(room, m) {
  if (!room.add(m)) return;
  if (room.name === state.active) {
    view.insertMessage(room, m, me());
    if (m.from !== me()) view.announce(`${m.from}: ${m.text}`);
  } else if (m.from !== me()) {
    room.unread++;
    view.renderRooms(state.rooms, state.active);
  }
}

function onAck(room, f) {
  const p = room.pending.get(f.ref);
  if (!p) return;
  room.pending.delete(f.ref);
  if (Number.isInteger(f.id)) {
    room.mine.add(f.id);
    // Usually our own "message" frame arrives too; if the ack came first,
    // show the message now (same id, so the echo is dropped as a duplicate).
    const m = { type: 'message', room: room.name, id: f.id, from: me(), text: p.text, ts: new Date().toISOString() };
    if (room.add(m) && room.name === state.active) view.insertMessage(room, m, me());
  }
  if (room.name === state.active) view.renderPending(room);
}

function onHistory(room, f) {
  const msgs = Array.isArray(f.messages) ? f.messages : [];
  const isActive = room.name === state.active;
  for (const m of msgs) if (room.add(m) && isActive) view.insertMessage(room, m, me());
  if (f.ref === 'gap:' + room.name) {
    const gap = msgs.length ? room.gapAbove(room.joinSince) : 0;
    if (gap) requestGap(room, gap);
  } else if (room.loadingOlder) {
    room.loadingOlder = false;
    if (msgs.length < HISTORY_PAGE) room.exhausted = true;
  }
  if (isActive) view.renderHistoryEdge(room);
}

function onError(f) {
  const ref = typeof f.ref === 'string' ? f.ref : '';
  const detail = f.detail || f.code || 'unknown error';
  if (ref.startsWith('join:')) {
    const name = ref.slice(5);
    el.roomError.textContent = `Could not join #${name}: ${detail}`;
    if (state.rooms.has(name)) removeRoom(name);
    return;
  }
  if (ref.startsWith('older:') || ref.startsWith('gap:')) {
    const room = state.rooms.get(ref.slice(ref.indexOf(':') + 1));
    if (room) { room.loadingOlder = false; view.renderHistoryEdge(activeRoom()); }
    view.showBanner(`Could not load history: ${detail}`, 'history');
    return;
  }
  for (const room of state.rooms.values()) {
    const p = room.pending.get(ref);
    if (!p) continue;
    p.state = 'failed';
    p.error = f.code === 'rate_limited' ? 'sending too fast; wait a moment, then retry.' : detail;
    if (room.name === state.active) view.renderPending(room);
    if (f.code === 'rate_limited') view.showBanner('You are sending messages too fast.', 'rate_limited');
    return;
  }
  switch (f.code) {
    case 'token_expired':
      // The server closes with 4001 at exp unless an "auth" comes first;
      // a successful refresh sends it and clears this banner
      // (sessionHooks.onRefreshed). Normally the scheduled refresh wins and
      // this never happens (a sleeping tab or a skewed clock). Say so only
      // if renewing is slow, rather than flash an alert for a few ms.
      if (state.session) {
        const slow = setTimeout(() => view.showBanner('Your session token expired; renewing it…', 'token_expired', { dismissable: false }), 1500);
        state.session.refresh().catch(() => {}).finally(() => clearTimeout(slow));
      }
      break;
    case 'rate_limited':
      view.showBanner('You are sending messages too fast.', 'rate_limited');
      break;
    case 'too_large':
      view.showBanner('That was too large for the server.', 'too_large');
      break;
    default:
      view.showBanner(detail, f.code || 'error');
  }
}

// ---- Rooms -----------------------------------------------------------------

el.joinForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const name = el.roomInput.value.trim().replace(/^#/, '').toLowerCase();
  if (!ROOM_RE.test(name)) {
    el.roomError.textContent = 'A room name is 1 to 64 characters: a-z, 0-9, dot, dash or underscore.';
    el.roomInput.focus();
    return;
  }
  el.roomError.textContent = '';
  el.roomInput.value = '';
  if (!state.rooms.has(name)) {
    const room = new Room(name);
    state.rooms.set(name, room);
    if (state.conn && state.conn.isOpen) sendJoin(room);
  }
  activate(name);
  el.messageInput.focus();
});

el.rooms.addEventListener('click', (ev) => {
  const btn = ev.target.closest('button');
  if (!btn) return;
  const name = btn.dataset.room;
  if (btn.classList.contains('room-select')) {
    activate(name);
    focusRoomButton(name);
  } else if (btn.classList.contains('leave')) {
    const names = [...state.rooms.keys()];
    const next = names[names.indexOf(name) + 1] || names[names.indexOf(name) - 1] || '';
    if (state.conn) state.conn.send({ type: 'leave', room: name });
    removeRoom(name);
    if (next) focusRoomButton(next, '.leave');
    else el.roomInput.focus();
  }
});

// focusRoomButton puts focus back after the list was redrawn.
function focusRoomButton(name, cls = '.room-select') {
  const b = el.rooms.querySelector(`li[data-room="${CSS.escape(name)}"] ${cls}`);
  if (b) b.focus();
}

function removeRoom(name) {
  const names = [...state.rooms.keys()];
  state.rooms.delete(name);
  if (state.active === name) {
    const i = names.indexOf(name);
    activate(names[i + 1] || names[i - 1] || '');
  } else {
    view.renderRooms(state.rooms, state.active);
    saveRooms();
  }
}

function activate(name) {
  state.active = state.rooms.has(name) ? name : '';
  const room = activeRoom();
  if (room) room.unread = 0;
  view.renderRooms(state.rooms, state.active);
  view.renderRoom(room, me());
  el.sendError.textContent = '';
  saveRooms();
}

function saveRooms() {
  try {
    sessionStorage.setItem(ROOMS_KEY, JSON.stringify({ rooms: [...state.rooms.keys()], active: state.active }));
  } catch { /* storage disabled: rooms are not restored on reload */ }
}

function loadRooms() {
  try {
    const v = JSON.parse(sessionStorage.getItem(ROOMS_KEY) || 'null');
    if (v && Array.isArray(v.rooms)) return { rooms: v.rooms.map(String), active: String(v.active || '') };
  } catch { /* ignore */ }
  return { rooms: [], active: '' };
}

// ---- History ---------------------------------------------------------------

function loadOlder() {
  const room = activeRoom();
  if (!room || !room.joined || !room.hasOlder || room.loadingOlder) return;
  room.loadingOlder = true;
  state.conn.send({ type: 'history', room: room.name, before: room.oldestId, limit: HISTORY_PAGE, ref: 'older:' + room.name });
  view.renderHistoryEdge(room);
}

el.loadOlder.addEventListener('click', loadOlder);
el.scroller.addEventListener('scroll', () => {
  if (el.scroller.scrollTop < 40) loadOlder();
}, { passive: true });

// ---- Sending ---------------------------------------------------------------

el.sendForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  sendText();
});

el.messageInput.addEventListener('keydown', (ev) => {
  // isComposing: Enter also confirms an IME composition; that is not "send".
  if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
    ev.preventDefault();
    sendText();
  }
});

function sendText() {
  const room = activeRoom();
  // Blank lines at either end are never meant (a stray Enter); inner ones and
  // indentation are kept.
  const text = el.messageInput.value.replace(/^(?:[ \t]*\r?\n)+|(?:\r?\n[ \t]*)+$/g, '');
  if (!room || !text.trim()) return;
  const n = textBytes(text);
  if (n > MAX_TEXT_BYTES) {
    el.sendError.textContent = `The message is too long: ${n} bytes, the limit is ${MAX_TEXT_BYTES}.`;
    return;
  }
  el.sendError.textContent = '';
  const ref = `c${++state.refSeq}.${Math.random().toString(36).slice(2, 8)}`;
  const p = { ref, text, state: 'queued', error: '', sentAfter: room.lastId };
  room.pending.set(ref, p);
  trySend(room, p);
  el.messageInput.value = '';
  view.renderPending(room);
  el.scroller.scrollTop = el.scroller.scrollHeight;
}

// trySend sends p now if the room is joined on an open socket, else leaves it
// queued for the next "joined".
function trySend(room, p) {
  p.sentAfter = room.lastId;
  p.error = '';
  if (room.joined && state.conn && state.conn.send({ type: 'send', room: room.name, text: p.text, ref: p.ref })) {
    p.state = 'sending';
  } else {
    p.state = 'queued';
  }
}

el.pending.addEventListener('click', (ev) => {
  const btn = ev.target.closest('button');
  const room = activeRoom();
  if (!btn || !room) return;
  const p = room.pending.get(btn.dataset.ref);
  if (!p) return;
  if (btn.classList.contains('retry')) trySend(room, p);
  else if (btn.classList.contains('discard')) room.pending.delete(p.ref);
  view.renderPending(room);
  el.messageInput.focus();
});

// ---- Page-level events -----------------------------------------------------

el.reconnect.addEventListener('click', () => {
  view.hideBanner();
  if (state.conn) state.conn.retryNow();
});
el.bannerClose.addEventListener('click', () => view.hideBanner());

// Timers in background tabs are throttled; catch up when the tab is seen.
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && state.session) state.session.checkSoon();
});
window.addEventListener('online', () => { if (state.conn) state.conn.retryNow(); });

// On a phone the members list starts folded so the messages get the room;
// it unfolds again when the window grows to a desktop size.
const narrow = window.matchMedia('(max-width: 700px)');
el.membersPanel.open = !narrow.matches;
narrow.addEventListener('change', (ev) => { el.membersPanel.open = !ev.matches; });

// ---- Start -----------------------------------------------------------------

const restored = Session.restore(sessionHooks());
if (restored) {
  const saved = loadRooms();
  enter(restored, saved.rooms, saved.active);
} else {
  view.showSignedIn('');
  el.username.focus();
}
