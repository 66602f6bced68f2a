// The chat client's entry point: signing in and out, the connection's
// lifecycle, and every user action. Server frames are handled in frames.js,
// shared state lives in state.js. Protocol: SPEC §6.
import { Session } from './session.js';
import { Connection } from './socket.js';
import {
  Room, ROOM_RE, USER_RE, MAX_TEXT_BYTES, HISTORY_PAGE, textBytes, validRoomName, dmName, isDM,
} from './rooms.js';
import { onOpen, onDrop, onFrame } from './frames.js';
import {
  state, me, activeRoom, ROOMS_KEY, DIRECTORY_EVERY_MS, sendJoin, trySend, activate, removeRoom, loadRooms,
  renderLists, requestDirectory, markRead, sendTyping,
} from './state.js';
import * as view from './view.js';

const { el } = view;

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
  state.rooms = new Map(roomNames.filter(validRoomName).map((n) => [n, new Room(n)]));
  state.active = state.rooms.has(active) ? active : (state.rooms.keys().next().value || '');
  state.directory = [];
  view.showSignedIn(session.username);
  renderLists();
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
  clearInterval(state.directoryTimer);
  state.directoryTimer = setInterval(() => { if (state.conn && state.conn.isOpen) requestDirectory(); }, DIRECTORY_EVERY_MS);
  (activeRoom() ? el.messageInput : el.roomInput).focus();
}

// leaveChat signs out (why explains it on the sign-in form, if not by choice).
function leaveChat(why) {
  if (!state.session && !state.conn) return; // re-entered via Session.onEnded
  const { session, conn } = state;
  state.session = state.conn = null;
  if (conn) conn.stop();
  if (session) session.end();
  clearInterval(state.directoryTimer);
  state.rooms = new Map();
  state.active = '';
  state.directory = [];
  try { sessionStorage.removeItem(ROOMS_KEY); } catch { /* ignore */ }
  renderLists();
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

// ---- Rooms -----------------------------------------------------------------

el.joinForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const raw = el.roomInput.value.trim().toLowerCase();
  // "@bob" in the room box starts a DM, as in the DM box.
  if (raw.startsWith('@')) {
    if (startDM(raw.slice(1), el.roomError)) el.roomInput.value = '';
    else el.roomInput.focus();
    return;
  }
  const name = raw.replace(/^#/, '');
  if (!ROOM_RE.test(name)) {
    el.roomError.textContent = 'A room name is 1 to 64 characters: a-z, 0-9, dot, dash or underscore (not . or ..).';
    el.roomInput.focus();
    return;
  }
  el.roomError.textContent = '';
  el.roomInput.value = '';
  openRoom(name);
  el.messageInput.focus();
});

el.dmForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  if (startDM(el.dmInput.value.trim().replace(/^@/, '').toLowerCase(), el.dmError)) {
    el.dmInput.value = '';
    el.messageInput.focus();
  } else {
    el.dmInput.focus();
  }
});

// startDM opens the conversation with user (SPEC §8: join "@user"; we join
// by the canonical name, which every frame of it carries).
function startDM(user, errorEl) {
  if (!USER_RE.test(user)) {
    errorEl.textContent = 'A username is 1 to 32 characters: a-z, 0-9, dot, dash or underscore, starting with a letter or digit.';
    return false;
  }
  errorEl.textContent = el.dmError.textContent = '';
  openRoom(dmName(me(), user));
  return true;
}

// openRoom joins name unless joined already, and puts it on screen.
function openRoom(name) {
  if (!state.rooms.has(name)) {
    const room = new Room(name);
    state.rooms.set(name, room);
    if (state.conn && state.conn.isOpen) sendJoin(room);
  }
  activate(name);
}

// The rooms, DMs and directory lists: a click (or Enter/Space, they are
// buttons) opens a room, joining it first if need be; × leaves it.
for (const list of [el.rooms, el.dms, el.directory]) {
  list.addEventListener('click', (ev) => {
    const btn = ev.target.closest('button');
    if (!btn) return;
    const name = btn.dataset.room;
    if (btn.classList.contains('room-select') || btn.classList.contains('dir-join')) {
      openRoom(name);
      focusRoomButton(name);
    } else if (btn.classList.contains('leave')) {
      const names = [...state.rooms.keys()].filter((n) => isDM(n) === isDM(name));
      const next = names[names.indexOf(name) + 1] || names[names.indexOf(name) - 1] || '';
      if (state.conn) state.conn.send({ type: 'leave', room: name });
      removeRoom(name);
      requestDirectory();
      if (next) focusRoomButton(next, '.leave');
      else (isDM(name) ? el.dmInput : el.roomInput).focus();
    }
  });
}

el.directoryRefresh.addEventListener('click', requestDirectory);

// Alt+Up and Alt+Down open the previous and next room, in the order the
// sidebar lists them (rooms, then DMs), from anywhere on the page.
document.addEventListener('keydown', (ev) => {
  if (!ev.altKey || ev.ctrlKey || ev.metaKey || ev.shiftKey || (ev.key !== 'ArrowUp' && ev.key !== 'ArrowDown')) return;
  const all = [...state.rooms.keys()];
  const names = [...all.filter((n) => !isDM(n)), ...all.filter(isDM)];
  if (!names.length) return;
  ev.preventDefault();
  const i = names.indexOf(state.active);
  const next = names[(i + (ev.key === 'ArrowUp' ? -1 : 1) + names.length) % names.length];
  const typing = document.activeElement === el.messageInput;
  activate(next);
  if (typing) el.messageInput.focus();
  else focusRoomButton(next);
});

// focusRoomButton puts focus back after the lists were redrawn.
function focusRoomButton(name, cls = '.room-select') {
  const list = isDM(name) ? el.dms : el.rooms;
  const b = list.querySelector(`li[data-room="${CSS.escape(name)}"] ${cls}`);
  if (b) b.focus();
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

el.messageInput.addEventListener('input', () => {
  if (el.messageInput.value.trim()) sendTyping(activeRoom());
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
  markRead(activeRoom());
});
// Coming back to the window reads the open room, and refreshes the directory.
window.addEventListener('focus', () => {
  markRead(activeRoom());
  if (state.conn && state.conn.isOpen) requestDirectory();
});
window.addEventListener('online', () => { if (state.conn) state.conn.retryNow(); });

// On a phone the members list starts folded so the messages get the room;
// it unfolds again when the window grows to a desktop size.
const narrow = window.matchMedia('(max-width: 700px)');
el.membersPanel.open = el.directoryPanel.open = !narrow.matches;
narrow.addEventListener('change', (ev) => { el.membersPanel.open = el.directoryPanel.open = !ev.matches; });

// ---- Start -----------------------------------------------------------------

const restored = Session.restore(sessionHooks());
if (restored) {
  const saved = loadRooms();
  enter(restored, saved.rooms, saved.active);
} else {
  view.showSignedIn('');
  el.username.focus();
}
