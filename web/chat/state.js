// Client state shared by app.js (user actions) and frames.js (server
// frames), plus the few actions both sides need.
import * as view from './view.js';

const { el } = view;

// Which rooms are open survives a reload (with the tokens, see session.js);
// messages do not: re-joining loads the latest history again.
export const ROOMS_KEY = 'chatctl.rooms';

export const state = {
  session: null, // Session while signed in
  conn: null, // Connection while signed in
  rooms: new Map(), // name -> Room, in the order joined
  active: '', // name of the room on screen
  refSeq: 0,
};

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

// removeRoom forgets a room (left, or refused by the server) and opens a
// neighbour if it was on screen.
export function removeRoom(name) {
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

// activate puts room name on screen ('' for none) and remembers the choice.
export function activate(name) {
  state.active = state.rooms.has(name) ? name : '';
  const room = activeRoom();
  if (room) room.unread = 0;
  view.renderRooms(state.rooms, state.active);
  view.renderRoom(room, me());
  el.sendError.textContent = '';
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
    if (v && Array.isArray(v.rooms)) return { rooms: v.rooms.map(String), active: String(v.active || '') };
  } catch { /* ignore */ }
  return { rooms: [], active: '' };
}
