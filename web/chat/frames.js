// Server frames (SPEC §6, §8): what each one does to room state and the view.
import { HISTORY_PAGE, isDM, displayName } from './rooms.js';
import {
  state, me, activeRoom, sendJoin, trySend, removeRoom, renderLists, requestDirectory, markRead, seeing,
} from './state.js';
import * as view from './view.js';

const { el } = view;

// onOpen re-joins every room; "since" makes the server replay exactly what
// we missed, and Room.add drops anything we already have.
export function onOpen() {
  for (const room of state.rooms.values()) sendJoin(room);
  requestDirectory();
}

// TYPING_SHOW_MS is how long "alice is typing…" stays after her last typing
// frame: there is no "stopped typing" frame (SPEC §8).
const TYPING_SHOW_MS = 3_000;

// onDrop runs when a socket goes away: a send without an ack may or may not
// have been stored, which the next "joined" replay tells us.
export function onDrop() {
  for (const room of state.rooms.values()) {
    room.joined = false;
    room.loadingOlder = false;
    for (const p of room.pending.values()) if (p.state === 'sending') p.state = 'unconfirmed';
  }
  const room = activeRoom();
  view.renderPending(room);
  view.renderHistoryEdge(room);
  view.renderMembers(room, me());
}

export function onFrame(f) {
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
      if (room.name === state.active) view.renderMembers(room, me());
      break;
    case 'rooms':
      if (Array.isArray(f.rooms)) {
        state.directory = f.rooms.filter((d) => d && typeof d.room === 'string');
        renderLists();
      }
      break;
    case 'read': onRead(f); break;
    case 'typing': if (room) onTyping(room, f.user); break;
    case 'left': if (room) onLeft(room, f); break;
    case 'error': onError(f); break;
    // pong: its arrival already counted as a sign of life.
  }
}

function onJoined(room, f) {
  const isActive = room.name === state.active;
  // reset: the room was deleted and created again while we were away; what
  // we hold are ids of a room that is gone. Start over, as on a first join.
  if (f.reset === true) {
    room.clear();
    room.joinSince = null;
    for (const p of room.pending.values()) p.sentAfter = 0;
  }
  const first = room.joinSince === null;
  if (typeof f.epoch === 'string') room.epoch = f.epoch;
  room.members = new Set(Array.isArray(f.members) ? f.members : []);
  if (Number.isInteger(f.read) && f.read > room.readId) room.readId = f.read;
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
  // The server's read state is the truth (it counts what other tabs and
  // devices read); an older server without it leaves our own count.
  if (Number.isInteger(f.unread)) room.unread = f.unread;
  else if (!isActive) room.unread += unseen;
  if (isActive) {
    if (first) view.renderRoom(room, me());
    else { view.renderMembers(room, me()); view.renderPending(room); view.renderHistoryEdge(room); }
    markRead(room);
  }
  renderLists();
  if (first) requestDirectory();
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
  if (room.typing.has(m.from)) stopTyping(room, m.from);
  const isActive = room.name === state.active;
  if (isActive) {
    view.insertMessage(room, m, me());
    if (m.from !== me()) view.announce(`${m.from}: ${m.text}`);
  }
  if (m.from === me()) return;
  if (isActive && seeing()) {
    markRead(room);
  } else if (m.id > room.readId) {
    room.unread++;
    renderLists();
  }
}

// onRead: the user read up to f.id on another tab or device; the badge
// follows. A room not joined here is counted by the directory.
function onRead(f) {
  if (typeof f.room !== 'string' || !Number.isInteger(f.id)) return;
  const room = state.rooms.get(f.room);
  if (room) {
    if (f.id <= room.readId) return;
    room.readId = f.id;
    room.unread = f.id >= room.lastId ? 0 : Math.min(room.unread, room.unreadAfter(f.id, me()));
    renderLists();
    return;
  }
  const d = state.directory.find((x) => x.room === f.room);
  if (!d) return;
  if (f.id >= d.last_id) {
    d.unread = 0;
    renderLists();
  } else {
    requestDirectory();
  }
}

function onTyping(room, user) {
  if (typeof user !== 'string' || user === me()) return;
  clearTimeout(room.typing.get(user));
  room.typing.set(user, setTimeout(() => stopTyping(room, user), TYPING_SHOW_MS));
  if (room.name === state.active) view.renderTyping(room);
}

function stopTyping(room, user) {
  clearTimeout(room.typing.get(user));
  room.typing.delete(user);
  if (room.name === state.active) view.renderTyping(room);
}

// onLeft: access to the room was taken away (SPEC §8); nothing more of it
// comes, so it is closed here, with a notice saying why.
function onLeft(room, f) {
  for (const t of room.typing.values()) clearTimeout(t);
  removeRoom(room.name);
  const why = f.reason === 'forbidden' ? 'you no longer have access to it' : 'the server removed you';
  view.showBanner(`${displayName(room.name, me())} was closed: ${why}.`, 'left');
  requestDirectory();
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
  // A page from another epoch (the room was deleted meanwhile) would mix two
  // rooms' ids; the rejoin that follows the deletion brings the new room.
  if (typeof f.epoch === 'string' && room.epoch !== null && f.epoch !== room.epoch) {
    room.loadingOlder = false;
    return;
  }
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
    if (isDM(name)) el.dmError.textContent = `Could not start a conversation with ${displayName(name, me())}: ${detail}`;
    else el.roomError.textContent = `Could not join #${name}: ${detail}`;
    if (state.rooms.has(name)) removeRoom(name);
    return;
  }
  // Typing, read markers and the directory are best effort: a refusal
  // (a read-only room, say) is no news to show. A read-only room stops
  // announcing typing.
  if (ref.startsWith('typing:')) {
    const room = state.rooms.get(ref.slice(7));
    if (room && f.code === 'forbidden') room.readOnly = true;
    return;
  }
  if (ref.startsWith('read:') || ref === 'dir') return;
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
