// Client state shared by app.js (user actions) and frames.js (server
// frames), plus the few actions both sides need.
import * as view from './view.js';
import { validRoomName } from './rooms.js';

const { el } = view;

// Which rooms are open survives a reload (with the tokens, see session.js);
// messages do not: re-joining loads the latest history again.
export const ROOMS_KEY = 'chatctl.rooms';

export const state = {
  session: null, // Session while signed in
  conn: null, // Connection while signed in
  rooms: new Map(), // name -> Room, in the order joined
  active: '', // name of the room on screen
  directory: [], // the last "rooms" answer: [{room, private, online, last_id, last_ts, unread}]
  typingSentAt: new Map(), // room -> Date.now() of our last "typing" frame
  directoryTimer: 0, // setInterval id of the directory refresh while signed in
  refSeq: 0,
};

// How often the directory is asked for while connected (and on focus, after
// joins and leaves): it has the online counts and the unread counts of
// rooms not joined, and the DMs someone else started.
export const DIRECTORY_EVERY_MS = 15_000;

// TYPING_EVERY_MS: at most one "typing" frame per room this often (the
// server drops more than one a second, and shows the indicator ~3 s).
export const TYPING_EVERY_MS = 1_000;

export const me = () => (state.session ? state.session.username : '');
export const activeRoom = () => state.rooms.get(state.active) || null;

// sendJoin (re)joins room. After the first join it passes since = the last
// id seen, with the epoch those ids belong to, so the server replays
// exactly what was missed, or everything if the room is not the one those
// ids came from (the joined frame then says reset).
export function sendJoin(room) {
  const frame = { type: 'join', room: room.name, ref: 'join:' + room.name };
  room.joinSince = room.everJoined ? room.lastId : null;
  if (room.joinSince !== null) {
    frame.since = room.joinSince;
    if (room.epoch !== null) frame.epoch = room.epoch;
  }
  state.conn.send(frame);
}

// trySend sends p now if the room is joined on an open socket, else leaves it
// queued for the next "joined".
export function trySend(room, p) {
  p.sentAfter = room.lastId;
  p.error = '';
  if (room.joined && state.conn && state.conn.send({ type: 'send', room: room.name, text: p.text, ref: p.ref })) {
    p.state = 'sending';
  } else {
    p.state = 'queued';
  }
}

// renderLists redraws the sidebar (rooms, DMs, directory).
export function renderLists() {
  view.renderRooms(state.rooms, state.active, state.directory, me());
}

// requestDirectory asks for the room directory (SPEC §8 "rooms").
export function requestDirectory() {
  if (state.conn) state.conn.send({ type: 'rooms', ref: 'dir' });
}

// seeing is whether the user can see the open room now.
export const seeing = () => document.visibilityState === 'visible' && document.hasFocus();

// markRead moves the user's read marker to the newest message of room if it
// is the open room and the user can see it; the server tells the user's other
// tabs and devices (SPEC §8 "read").
export function markRead(room) {
  if (!room || room.name !== state.active || !room.joined || !seeing()) return;
  if (room.lastId > room.readId && state.conn &&
      state.conn.send({ type: 'read', room: room.name, id: room.lastId, ref: 'read:' + room.name })) {
    room.readId = room.lastId;
  }
  if (room.unread) {
    room.unread = 0;
    renderLists();
  }
}

// sendTyping tells the room's others that we type, at most once a second.
export function sendTyping(room) {
  if (!room || !room.joined || room.readOnly || !state.conn) return;
  const now = Date.now();
  if (now - (state.typingSentAt.get(room.name) || 0) < TYPING_EVERY_MS) return;
  if (state.conn.send({ type: 'typing', room: room.name, ref: 'typing:' + room.name })) state.typingSentAt.set(room.name, now);
}

// removeRoom forgets a room (left, or refused by the server) and opens a
// neighbour if it was on screen.
export function removeRoom(name) {
  const names = [...state.rooms.keys()];
  state.rooms.delete(name);
  if (state.active === name) {
    const i = names.indexOf(name);
    activate(names[i + 1] || names[i - 1] || '');
  } else {
    renderLists();
    saveRooms();
  }
}

// activate puts room name on screen ('' for none) and remembers the choice.
export function activate(name) {
  state.active = state.rooms.has(name) ? name : '';
  const room = activeRoom();
  renderLists();
  view.renderRoom(room, me());
  el.sendError.textContent = '';
  markRead(room);
  saveRooms();
}

// saveRooms and loadRooms keep the open rooms across a reload.
export function saveRooms() {
  try {
    sessionStorage.setItem(ROOMS_KEY, JSON.stringify({ rooms: [...state.rooms.keys()], active: state.active }));
  } catch { /* storage disabled: rooms are not restored on reload */ }
}

export function loadRooms() {
  try {
    const v = JSON.parse(sessionStorage.getItem(ROOMS_KEY) || 'null');
    if (v && Array.isArray(v.rooms)) return { rooms: v.rooms.map(String).filter(validRoomName), active: String(v.active || '') };
  } catch { /* ignore */ }
  return { rooms: [], active: '' };
}
