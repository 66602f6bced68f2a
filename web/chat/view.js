// View: everything that touches the DOM. Text from the server only ever goes
// through textContent, never innerHTML, so a message cannot inject markup;
// links are <a> elements built here from linkParts (http and https only).
import { isDM, displayName, dmPeer, linkParts, grouping } from './rooms.js';

const $ = (id) => document.getElementById(id);

export const el = {
  connStatus: $('conn-status'),
  userBox: $('user-box'),
  whoami: $('whoami'),
  signout: $('signout'),
  banner: $('banner'),
  bannerText: $('banner-text'),
  reconnect: $('reconnect'),
  bannerClose: $('banner-close'),
  signinView: $('signin-view'),
  signinForm: $('signin-form'),
  username: $('username'),
  password: $('password'),
  signinError: $('signin-error'),
  signinButton: $('signin'),
  chatView: $('chat-view'),
  joinForm: $('join-form'),
  roomInput: $('room-input'),
  roomError: $('room-error'),
  rooms: $('rooms'),
  dms: $('dms'),
  dmForm: $('dm-form'),
  dmInput: $('dm-input'),
  dmError: $('dm-error'),
  directoryPanel: $('directory-panel'),
  directory: $('directory'),
  directoryRefresh: $('directory-refresh'),
  typing: $('typing'),
  roomTitle: $('room-title'),
  scroller: $('scroller'),
  loadOlder: $('load-older'),
  historyStart: $('history-start'),
  messages: $('messages'),
  pending: $('pending'),
  sendForm: $('send-form'),
  messageLabel: $('message-label'),
  messageInput: $('message-input'),
  sendButton: $('send'),
  sendError: $('send-error'),
  membersPanel: $('members-panel'),
  memberCount: $('member-count'),
  members: $('members'),
  live: $('live'),
};

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dateTimeFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' });

// online is whether our own socket is open: while it is not, our own entry
// in the members list shows as offline (set by setStatus).
let online = false;

/** showSignedIn switches between the sign-in form and the chat. */
export function showSignedIn(username) {
  const inside = !!username;
  el.signinView.hidden = inside;
  el.chatView.hidden = !inside;
  el.userBox.hidden = !inside;
  el.whoami.textContent = inside ? `Signed in as ${username}` : '';
}

const STATUS_TEXT = {
  connecting: 'Connecting…',
  open: 'Connected',
  waiting: 'Reconnecting…',
  stopped: 'Disconnected',
  closed: 'Signed out',
};

/** setStatus shows the connection state; data-state is for tests and CSS. */
export function setStatus(state) {
  el.connStatus.dataset.state = state;
  el.connStatus.textContent = STATUS_TEXT[state] || state;
  online = state === 'open';
  el.whoami.dataset.presence = online ? 'online' : 'offline';
  for (const li of el.members.querySelectorAll('li[data-self]')) setPresence(li, online);
}

function setPresence(li, on) {
  li.dataset.presence = on ? 'online' : 'offline';
  const note = li.querySelector('.presence-note');
  if (note) note.textContent = on ? ' (you)' : ' (you, offline)';
}

/**
 * showBanner shows an error or notice. kind is a stable word tests can match
 * (data-kind): "error", "offline", "rate_limited", "too_many", ….
 */
export function showBanner(text, kind = 'error', { reconnect = false, dismissable = true } = {}) {
  el.banner.dataset.kind = kind;
  el.bannerText.textContent = text;
  el.reconnect.hidden = !reconnect;
  el.bannerClose.hidden = !dismissable;
  el.banner.classList.add('shown');
}

export function hideBanner(kind) {
  if (kind && el.banner.dataset.kind !== kind) return;
  el.banner.dataset.kind = '';
  el.bannerText.textContent = '';
  el.reconnect.hidden = el.bannerClose.hidden = true;
  el.banner.classList.remove('shown');
}

/**
 * renderRooms redraws the sidebar lists: the joined rooms, the DMs (joined,
 * and those the directory knows of), and the directory of rooms to browse.
 * The active room has aria-current; unread counts are badges.
 */
export function renderRooms(rooms, active, directory, me) {
  // The lists are redrawn often (badges, the directory every few seconds):
  // a keyboard user's focus stays on the same button.
  const f = document.activeElement;
  const list = f && f.dataset && f.dataset.room !== undefined ? f.closest('#rooms, #dms, #directory') : null;
  const keep = list ? `#${list.id} li[data-room="${CSS.escape(f.dataset.room)}"] button.${f.classList[0]}` : '';
  const info = new Map(directory.map((d) => [d.room, d]));
  const joined = [...rooms.values()];
  el.rooms.replaceChildren(...joined.filter((r) => !isDM(r.name)).map((r) => roomItem(r.name, r.unread, active, me, info.get(r.name), true)));
  const dms = joined.filter((r) => isDM(r.name)).map((r) => roomItem(r.name, r.unread, active, me, info.get(r.name), true));
  for (const d of directory) {
    if (isDM(d.room) && !rooms.has(d.room)) dms.push(roomItem(d.room, d.unread, active, me, d, false));
  }
  el.dms.replaceChildren(...dms);
  el.directory.replaceChildren(...directory.filter((d) => !isDM(d.room)).map((d) => {
    const r = rooms.get(d.room);
    const li = document.createElement('li');
    li.dataset.room = d.room;
    if (r) li.dataset.joined = '';
    const pick = document.createElement('button');
    pick.type = 'button';
    pick.className = 'dir-join';
    pick.dataset.room = d.room;
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = '#' + d.room;
    pick.append(name);
    if (d.private) pick.append(' ', privateTag());
    const on = document.createElement('span');
    on.className = 'online';
    on.textContent = `${d.online} online`;
    pick.append(' ', on);
    const unread = r ? r.unread : d.unread;
    if (unread) pick.append(' ', badge(unread));
    const what = r ? 'Open' : 'Join';
    pick.setAttribute('aria-label', `${what} #${d.room}${d.private ? ', private' : ''}, ${d.online} online${unread ? `, ${unread} unread` : ''}`);
    if (d.room === active) pick.setAttribute('aria-current', 'true');
    li.append(pick);
    return li;
  }));
  const now = document.activeElement;
  if (keep && !(now && now.closest('#sidebar'))) {
    const again = document.querySelector(keep);
    if (again) again.focus({ preventScroll: true });
  }
}

function roomItem(name, unread, active, me, info, joined) {
  const li = document.createElement('li');
  li.dataset.room = name;
  if (isDM(name)) li.dataset.peer = dmPeer(name, me);
  if (!joined) li.dataset.notJoined = '';
  const pick = document.createElement('button');
  pick.type = 'button';
  pick.className = 'room-select';
  pick.dataset.room = name;
  const label = document.createElement('span');
  label.className = 'name';
  label.textContent = displayName(name, me);
  pick.append(label);
  if (info && info.private && !isDM(name)) pick.append(' ', privateTag());
  if (name === active) pick.setAttribute('aria-current', 'true');
  if (unread) pick.append(' ', badge(unread));
  li.append(pick);
  if (joined) {
    const leave = document.createElement('button');
    leave.type = 'button';
    leave.className = 'leave';
    leave.dataset.room = name;
    leave.textContent = '×';
    leave.setAttribute('aria-label', isDM(name) ? `Close the conversation with ${dmPeer(name, me)}` : `Leave #${name}`);
    li.append(leave);
  }
  return li;
}

function badge(n) {
  const b = document.createElement('span');
  b.className = 'unread';
  b.textContent = n > 999 ? '999+' : String(n);
  b.setAttribute('aria-label', `${n} unread`);
  return b;
}

function privateTag() {
  const t = document.createElement('span');
  t.className = 'private';
  t.textContent = 'private';
  return t;
}

/** renderRoom redraws the whole message area for room (or none). */
export function renderRoom(room, me) {
  const title = room ? displayName(room.name, me) : '';
  el.roomTitle.textContent = room ? (isDM(room.name) ? `Conversation with ${title}` : title) : 'No room selected';
  el.messageLabel.textContent = room ? `Message ${title}` : 'Message';
  el.messageInput.disabled = el.sendButton.disabled = !room;
  el.messages.replaceChildren(...(room ? room.ids.map((id) => messageEl(room.byId.get(id), me)) : []));
  regroup();
  renderPending(room);
  renderHistoryEdge(room);
  renderMembers(room, me);
  renderTyping(room);
  el.scroller.scrollTop = el.scroller.scrollHeight;
}

/**
 * insertMessage adds one message in id order, keeping the reader's place:
 * the view follows new messages only if it was already at the bottom, and a
 * prepend (history) does not move what is on screen.
 */
export function insertMessage(room, m, me) {
  const node = messageEl(m, me);
  const next = room.nextAfter(m.id);
  const before = next ? el.messages.querySelector(`li[data-id="${next}"]`) : null;
  const atBottom = isAtBottom();
  const oldHeight = el.scroller.scrollHeight;
  el.messages.insertBefore(node, before);
  regroup();
  if (before) {
    el.scroller.scrollTop += el.scroller.scrollHeight - oldHeight;
  } else if (atBottom) {
    el.scroller.scrollTop = el.scroller.scrollHeight;
  }
}

function isAtBottom() {
  const s = el.scroller;
  return s.scrollHeight - s.scrollTop - s.clientHeight < 40;
}

/**
 * regroup walks the message list once: it puts a day separator before the
 * first message of each day and marks the messages that continue their
 * sender's group (same sender, same minute), which hide name and time.
 * Cheap enough for the few hundred messages a room holds on screen.
 */
function regroup() {
  for (const sep of el.messages.querySelectorAll('li.day-separator')) sep.remove();
  let prev = null;
  for (const li of [...el.messages.children]) {
    const m = { from: li.dataset.from, ts: li.dataset.ts };
    const g = grouping(prev, m);
    li.classList.toggle('continued', g.continued);
    if (g.newDay) el.messages.insertBefore(daySeparator(g.day, m.ts), li);
    prev = m;
  }
}

function daySeparator(day, ts) {
  const li = document.createElement('li');
  li.className = 'day-separator';
  li.dataset.day = day;
  li.setAttribute('role', 'separator');
  const d = new Date(ts);
  const today = new Date();
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  const sameDay = (a, b) => a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
  const text = document.createElement('span');
  text.textContent = sameDay(d, today) ? 'Today' : sameDay(d, yesterday) ? 'Yesterday' : dayFmt.format(d);
  li.setAttribute('aria-label', dayFmt.format(d));
  li.append(text);
  return li;
}

function messageEl(m, me) {
  const li = document.createElement('li');
  li.className = 'message';
  li.dataset.id = String(m.id);
  li.dataset.from = m.from;
  li.dataset.ts = m.ts;
  if (m.from === me) li.dataset.self = '';
  const meta = document.createElement('div');
  meta.className = 'meta';
  const from = document.createElement('span');
  from.className = 'from';
  from.textContent = m.from;
  meta.append(from, ' ');
  const d = new Date(m.ts);
  if (!isNaN(d)) {
    const t = document.createElement('time');
    t.dateTime = m.ts;
    t.title = dateTimeFmt.format(d);
    t.textContent = timeFmt.format(d);
    meta.append(t);
  }
  const text = document.createElement('p');
  text.className = 'text';
  text.append(...linkParts(String(m.text)).map(linkOrText));
  li.append(meta, text);
  return li;
}

// linkOrText makes one part of a message: a text node, or a link that opens
// in a new tab without giving it our window (noopener) or our URL (noreferrer).
function linkOrText(part) {
  if (!part.href) return document.createTextNode(part.text);
  const a = document.createElement('a');
  a.href = part.href;
  a.textContent = part.text;
  a.target = '_blank';
  a.rel = 'noopener noreferrer';
  return a;
}

const PENDING_TEXT = { queued: 'Waiting for connection…', sending: 'Sending…', unconfirmed: 'Checking…' };

/** renderPending redraws the unsent and unacknowledged messages. */
export function renderPending(room) {
  const atBottom = isAtBottom();
  el.pending.replaceChildren(...(room ? [...room.pending.values()].map((p) => {
    const li = document.createElement('li');
    li.className = 'message pending';
    li.dataset.ref = p.ref;
    li.dataset.state = p.state;
    const text = document.createElement('p');
    text.className = 'text';
    text.textContent = p.text;
    const status = document.createElement('p');
    status.className = 'status';
    li.append(text, status);
    if (p.state === 'failed') {
      status.textContent = 'Not sent: ' + (p.error || 'unknown error');
      const retry = document.createElement('button');
      retry.type = 'button';
      retry.className = 'retry';
      retry.dataset.ref = p.ref;
      retry.textContent = 'Retry';
      const discard = document.createElement('button');
      discard.type = 'button';
      discard.className = 'discard';
      discard.dataset.ref = p.ref;
      discard.textContent = 'Discard';
      li.append(retry, ' ', discard);
    } else {
      status.textContent = PENDING_TEXT[p.state] || '';
    }
    return li;
  }) : []));
  if (atBottom) el.scroller.scrollTop = el.scroller.scrollHeight;
}

/** renderHistoryEdge shows either the "load older" button or "start of room". */
export function renderHistoryEdge(room) {
  el.loadOlder.hidden = !room || !room.hasOlder;
  el.loadOlder.disabled = !!room && room.loadingOlder;
  el.loadOlder.textContent = room && room.loadingOlder ? 'Loading older messages…' : 'Load older messages';
  el.historyStart.hidden = !room || !room.joined || room.hasOlder;
}

/**
 * renderMembers lists who is in the room, sorted. Our own entry says we are
 * offline while the socket is down (the server lists us again on rejoin).
 */
export function renderMembers(room, me) {
  const names = room ? [...room.members].sort() : [];
  el.memberCount.textContent = String(names.length);
  el.members.replaceChildren(...names.map((n) => {
    const li = document.createElement('li');
    li.dataset.user = n;
    li.textContent = n;
    if (n === me) {
      li.dataset.self = '';
      const note = document.createElement('span');
      note.className = 'presence-note';
      li.append(note);
      setPresence(li, online);
    } else {
      li.dataset.presence = 'online';
    }
    return li;
  }));
}

/** renderTyping says who is typing in room ("alice is typing…"). */
export function renderTyping(room) {
  const names = room ? [...room.typing.keys()].sort() : [];
  el.typing.dataset.users = names.join(' ');
  el.typing.textContent = names.length === 0 ? ''
    : names.length === 1 ? `${names[0]} is typing…`
      : names.length === 2 ? `${names[0]} and ${names[1]} are typing…`
        : 'Several people are typing…';
}

/** announce reads text to screen-reader users without moving focus. */
export function announce(text) {
  // Replacing the node (not appending) keeps the region short; screen
  // readers announce each change of a polite region.
  el.live.textContent = text;
}
