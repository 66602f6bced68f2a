// Room state, free of DOM and sockets so its rules stay easy to check:
// messages are deduplicated by id, kept sorted, and lastId is what a
// reconnect passes as "since" so nothing is missed or shown twice. Ids are
// only meaningful within the room's epoch: a room deleted and created again
// starts at 1 under a new one, and the server then answers the join with
// reset, after which the room starts over (clear).

/** ROOM_RE is the room-name rule of SPEC §6; "." and ".." are refused too. */
export const ROOM_RE = /^(?!\.{1,2}$)[a-z0-9._-]{1,64}$/;

/** USER_RE is the username rule of SPEC §4. */
export const USER_RE = /^[a-z0-9][a-z0-9._-]{0,31}$/;

/**
 * DM_RE matches the canonical name of a direct message (SPEC §8): "@" and
 * the two usernames, sorted, joined by "+". Room names never hold @ or +.
 */
export const DM_RE = /^@[a-z0-9][a-z0-9._-]{0,31}\+[a-z0-9][a-z0-9._-]{0,31}$/;

/** validRoomName accepts a room name or a canonical DM name. */
export const validRoomName = (n) => ROOM_RE.test(n) || DM_RE.test(n);

export const isDM = (name) => name.startsWith('@');

/** dmName is the canonical name of the DM between users a and b. */
export function dmName(a, b) {
  return '@' + [a, b].sort().join('+');
}

/** dmPeer is the other user of DM name, seen by me (me for a DM with oneself). */
export function dmPeer(name, me) {
  const [a, b] = name.slice(1).split('+');
  return a === me ? b : a;
}

/** displayName is how the room list names a room: #room, or the DM's other user. */
export function displayName(name, me) {
  return isDM(name) ? dmPeer(name, me) : '#' + name;
}

/** MAX_TEXT_BYTES is the server's text limit (ws limits, SPEC §6). */
export const MAX_TEXT_BYTES = 4096;

/** HISTORY_PAGE is how many older messages one scroll to the top asks for. */
export const HISTORY_PAGE = 50;

export class Room {
  constructor(name) {
    this.name = name;
    this.byId = new Map(); // id -> message frame
    this.ids = []; // sorted ascending
    this.members = new Set();
    this.joined = false; // a "joined" arrived on the current socket
    this.everJoined = false; // lastId is meaningful for "since"
    this.lastId = 0;
    this.exhausted = false; // history said there is nothing older
    this.loadingOlder = false;
    this.unread = 0;
    this.pending = new Map(); // ref -> {ref, text, state, error, sentAfter}
    this.mine = new Set(); // ids known to be our own sends (acked or matched)
    this.joinSince = null; // "since" of the last join sent, null for a first join
    this.epoch = null; // the room's epoch from the last "joined", null before one
    this.readId = 0; // the user's read marker (server read state, SPEC §8)
    this.typing = new Map(); // user -> timer id of the "is typing" expiry
  }

  /**
   * unreadAfter counts the loaded messages of others above marker: what a
   * read marker that moved (another tab) leaves unread.
   */
  unreadAfter(marker, me) {
    let n = 0;
    for (let i = this.ids.length - 1; i >= 0 && this.ids[i] > marker; i--) {
      if (this.byId.get(this.ids[i]).from !== me) n++;
    }
    return n;
  }

  /** clear forgets every message: the ids belonged to an older epoch. */
  clear() {
    this.byId.clear();
    this.ids = [];
    this.mine.clear();
    this.lastId = 0;
    this.exhausted = false;
    this.loadingOlder = false;
  }

  get oldestId() {
    return this.ids.length ? this.ids[0] : 0;
  }

  /** hasOlder reports whether scrolling up could load more. Ids start at 1. */
  get hasOlder() {
    return !this.exhausted && this.oldestId > 1;
  }

  /** add stores m unless its id is known; returns true if it was new. */
  add(m) {
    if (!Number.isInteger(m.id) || m.id < 1 || this.byId.has(m.id)) return false;
    this.byId.set(m.id, m);
    // Almost always an append (live) or a prepend (history): check the ends
    // before searching.
    if (!this.ids.length || m.id > this.ids[this.ids.length - 1]) this.ids.push(m.id);
    else if (m.id < this.ids[0]) this.ids.unshift(m.id);
    else this.ids.splice(lowerBound(this.ids, m.id), 0, m.id);
    if (m.id > this.lastId) this.lastId = m.id;
    return true;
  }

  /**
   * gapAbove returns the first id missing right after `since`, or 0 when the
   * messages from since+1 up are contiguous. A server may cap what a join
   * replays; then the app fills the hole with history requests.
   */
  gapAbove(since) {
    if (!since || !this.ids.length) return 0;
    let want = since + 1;
    for (let i = lowerBound(this.ids, want); i < this.ids.length; i++, want++) {
      if (this.ids[i] !== want) return want;
    }
    return 0;
  }

  /** nextAfter returns the smallest known id greater than id, or 0. */
  nextAfter(id) {
    const i = lowerBound(this.ids, id + 1);
    return i < this.ids.length ? this.ids[i] : 0;
  }
}

function lowerBound(a, x) {
  let lo = 0, hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid] < x) lo = mid + 1; else hi = mid;
  }
  return lo;
}

/** textBytes is the UTF-8 length the server counts against MAX_TEXT_BYTES. */
export function textBytes(s) {
  return new TextEncoder().encode(s).length;
}

// URL_RE finds http(s) URLs in message text. Trailing punctuation that
// usually ends a sentence is not part of the link (see linkParts).
const URL_RE = /\bhttps?:\/\/[^\s<>"'`]+/gi;
const TRAILING_RE = /[.,;:!?)\]}]+$/;

/**
 * linkParts splits text into plain parts {text} and link parts {text, href}.
 * Only absolute http: and https: URLs become links; the view builds them
 * with createElement and textContent, so nothing in text is ever markup.
 */
export function linkParts(text) {
  const out = [];
  let last = 0;
  for (const m of text.matchAll(URL_RE)) {
    let url = m[0];
    const trail = url.match(TRAILING_RE);
    if (trail) {
      url = url.slice(0, url.length - trail[0].length);
      // A closing parenthesis whose opening one is in the URL belongs to it
      // (a wiki page named "Go_(game)", say).
      const open = (url.match(/\(/g) || []).length, close = (url.match(/\)/g) || []).length;
      if (trail[0].startsWith(')') && open > close) url += ')';
    }
    let href = '';
    try {
      const u = new URL(url);
      if (u.protocol === 'http:' || u.protocol === 'https:') href = u.href;
    } catch { /* not a URL after all */ }
    if (!href) continue;
    if (m.index > last) out.push({ text: text.slice(last, m.index) });
    out.push({ text: url, href });
    last = m.index + url.length;
  }
  if (last < text.length) out.push({ text: text.slice(last) });
  return out;
}

/** dayKey is the local calendar day of d, as YYYY-MM-DD. */
export function dayKey(d) {
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

/**
 * grouping says how message m sits after prev (or null): newDay when a day
 * separator goes before it, continued when it joins prev's group (same
 * sender, same minute, same day) and so shows no name and time of its own.
 */
export function grouping(prev, m) {
  const d = new Date(m.ts);
  if (isNaN(d)) return { newDay: false, continued: false, day: '' };
  const day = dayKey(d);
  if (!prev) return { newDay: true, continued: false, day };
  const pd = new Date(prev.ts);
  if (isNaN(pd)) return { newDay: true, continued: false, day };
  const newDay = dayKey(pd) !== day;
  const continued = !newDay && prev.from === m.from && Math.floor(pd / 60000) === Math.floor(d / 60000);
  return { newDay, continued, day };
}
