// Room state, free of DOM and sockets so its rules stay easy to check:
// messages are deduplicated by id, kept sorted, and lastId is what a
// reconnect passes as "since" so nothing is missed or shown twice. Ids are
// only meaningful within the room's epoch: a room deleted and created again
// starts at 1 under a new one, and the server then answers the join with
// reset, after which the room starts over (clear).

/** ROOM_RE is the room-name rule of SPEC §6; "." and ".." are refused too. */
export const ROOM_RE = /^(?!\.{1,2}$)[a-z0-9._-]{1,64}$/;

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
