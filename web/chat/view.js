// View: everything that touches the DOM. Text from the server only ever goes
// through textContent, never innerHTML, so a message cannot inject markup.

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

/** renderRooms redraws the room list; the active room has aria-current. */
export function renderRooms(rooms, active) {
  el.rooms.replaceChildren(...[...rooms.values()].map((r) => {
    const li = document.createElement('li');
    li.dataset.room = r.name;
    const pick = document.createElement('button');
    pick.type = 'button';
    pick.className = 'room-select';
    pick.dataset.room = r.name;
    pick.textContent = '#' + r.name;
    if (r.name === active) pick.setAttribute('aria-current', 'true');
    if (r.unread) {
      const badge = document.createElement('span');
      badge.className = 'unread';
      badge.textContent = String(r.unread);
      badge.setAttribute('aria-label', `${r.unread} unread`);
      pick.append(' ', badge);
    }
    const leave = document.createElement('button');
    leave.type = 'button';
    leave.className = 'leave';
    leave.dataset.room = r.name;
    leave.textContent = '×';
    leave.setAttribute('aria-label', `Leave #${r.name}`);
    li.append(pick, leave);
    return li;
  }));
}

/** renderRoom redraws the whole message area for room (or none). */
export function renderRoom(room, me) {
  el.roomTitle.textContent = room ? '#' + room.name : 'No room selected';
  el.messageLabel.textContent = room ? `Message #${room.name}` : 'Message';
  el.messageInput.disabled = el.sendButton.disabled = !room;
  el.messages.replaceChildren(...(room ? room.ids.map((id) => messageEl(room.byId.get(id), me)) : []));
  renderPending(room);
  renderHistoryEdge(room);
  renderMembers(room);
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

function messageEl(m, me) {
  const li = document.createElement('li');
  li.className = 'message';
  li.dataset.id = String(m.id);
  li.dataset.from = m.from;
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
  text.textContent = m.text;
  li.append(meta, text);
  return li;
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

/** renderMembers lists who is in the room, sorted. */
export function renderMembers(room) {
  const names = room ? [...room.members].sort() : [];
  el.memberCount.textContent = String(names.length);
  el.members.replaceChildren(...names.map((n) => {
    const li = document.createElement('li');
    li.dataset.user = n;
    li.textContent = n;
    return li;
  }));
}

/** announce reads text to screen-reader users without moving focus. */
export function announce(text) {
  // Replacing the node (not appending) keeps the region short; screen
  // readers announce each change of a polite region.
  el.live.textContent = text;
}
