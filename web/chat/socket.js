// Connection: one WebSocket to /ws that keeps itself open (SPEC §6).
//
// It owns reconnecting and the close-code policy; what to do once a socket is
// open (re-joining rooms) and with each frame belongs to the app, through the
// callbacks. Every socket gets its own handlers and checks that it is still
// the current one, so events from a socket we gave up on can never act.

/** Close codes from SPEC §6. */
export const Close = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001, // server shutting down: reconnect
  ABNORMAL: 1006, // no close frame: network, server down, or upgrade refused (401)
  TOO_BIG: 1009, // a frame over the limit: a client bug
  EXPIRED: 4001, // token expired: refresh, then reconnect
  REVOKED: 4003, // user disabled/removed/revoked: sign in again, never reconnect
  SLOW: 4008, // our outbound queue overflowed: reconnect
  TOO_MANY: 4029, // too many connections for this user: the user must act
});

const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 30_000;
// A connection that stayed up this long was healthy: start backoff afresh.
const STABLE_MS = 10_000;
// The server's pings are WebSocket control frames, invisible to JS, so we
// send app-level pings to notice a dead link (laptop sleep, lost Wi-Fi)
// without waiting for TCP. Must be well under DEAD_MS.
const PING_EVERY_MS = 20_000;
const DEAD_MS = 45_000;

/**
 * backoffDelay is exponential backoff with "equal jitter": half the ceiling
 * plus a random half, so clients that lost the same server spread out but
 * none retries at once in a tight loop.
 */
export function backoffDelay(attempt, random = Math.random) {
  const ceil = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
  return ceil / 2 + random() * (ceil / 2);
}

export class Connection {
  /**
   * @param {object} o
   * @param {(force: boolean) => Promise<string>} o.getToken a fresh access
   *   token; force asks for a refresh even if the current one looks valid.
   *   Rejects with err.fatal when the session is over.
   * @param {(t: string) => Promise<number>} o.probe status of GET /users/me
   *   with token t, 0 when the server cannot be reached.
   * @param {() => void} o.onOpen
   * @param {(frame: object) => void} o.onFrame
   * @param {(state: string, message?: string, retryAt?: number) => void} o.onState
   *   state is "connecting", "open", "waiting" (a retry is scheduled),
   *   "stopped" (needs the user: 4029) or "closed".
   * @param {() => void} o.onDrop the socket went away (pending sends are now
   *   unconfirmed).
   * @param {(why: string) => void} o.onRevoked close 4003.
   */
  constructor(o) {
    this.o = o;
    this.ws = null;
    this.attempt = 0;
    this.retryTimer = 0;
    this.pingTimer = 0;
    this.lastFrameAt = 0;
    this.openedAt = 0;
    this.stopped = true;
    this.forceRefresh = false;
    this.lastRenewAt = 0; // when renew() last ran, to stop a refresh loop
  }

  /** start connects and keeps reconnecting until stop. */
  start() {
    this.stopped = false;
    this.connect();
  }

  /** stop closes the socket for good (sign out). */
  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.drop(Close.NORMAL);
    this.o.onState('closed');
  }

  /** retryNow skips the backoff wait (the Reconnect button, "online" event). */
  retryNow() {
    if (this.ws) return;
    this.stopped = false;
    this.attempt = 0;
    this.connect();
  }

  get isOpen() {
    return !!this.ws && this.ws.readyState === WebSocket.OPEN;
  }

  /** send writes one frame; false when there is no open socket. */
  send(frame) {
    if (!this.isOpen) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  async connect() {
    clearTimeout(this.retryTimer);
    if (this.stopped || this.ws) return;
    this.o.onState('connecting');
    let token;
    try {
      token = await this.o.getToken(this.forceRefresh);
      this.forceRefresh = false;
    } catch (err) {
      if (!err.fatal) this.retry(err.message || 'Cannot reach the server.');
      return; // fatal: the session's onEnded signs the user out
    }
    if (this.stopped || this.ws) return;

    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${scheme}//${location.host}/ws?token=${encodeURIComponent(token)}`);
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      opened = true;
      this.openedAt = this.lastFrameAt = Date.now();
      this.startPings();
      this.o.onState('open');
      this.o.onOpen();
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      this.lastFrameAt = Date.now();
      let frame;
      try { frame = JSON.parse(ev.data); } catch { return; }
      if (frame && typeof frame === 'object') this.o.onFrame(frame);
    };
    ws.onerror = () => { /* always followed by close, which has the code */ };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.stopPings();
      this.o.onDrop();
      this.closed(ev.code, ev.reason, opened, token);
    };
  }

  // closed applies the SPEC §6 table to a socket that went away.
  async closed(code, reason, opened, token) {
    if (this.stopped) return;
    if (opened && Date.now() - this.openedAt > STABLE_MS) this.attempt = 0;
    switch (code) {
      case Close.REVOKED:
        this.stopped = true;
        this.o.onState('closed');
        this.o.onRevoked(reason
          ? `The server ended your session (${reason}). Sign in again.`
          : 'The server ended your session: access revoked or account disabled. Sign in again.');
        return;
      case Close.TOO_MANY:
        this.stopped = true;
        this.o.onState('stopped', 'Too many connections for this user. Close another tab or client, then press Reconnect.');
        return;
      case Close.EXPIRED:
        this.renew();
        return;
      case Close.GOING_AWAY:
        this.retry('The server is restarting.');
        return;
      case Close.SLOW:
        this.retry('The connection was too slow to keep up.');
        return;
      case Close.TOO_BIG:
        this.retry('The server rejected a frame as too large (close 1009). This is a bug in the client.');
        return;
    }
    if (!opened) {
      // The browser hides why an upgrade failed (a 401 looks like any
      // network error), so ask an ordinary endpoint.
      const status = await this.o.probe(token);
      if (status === 401) {
        this.renew();
      } else if (status === 0) {
        this.retry('Cannot reach the server.');
      } else {
        this.retry('Could not open the chat connection.');
      }
      return;
    }
    this.retry('Connection lost.');
  }

  // renew refreshes the token and comes straight back. It backs off only if
  // that repeats, which means the clocks disagree or refreshing does not help;
  // a refresh that fails for good ends the session (Session.onEnded).
  renew() {
    this.forceRefresh = true;
    const repeat = Date.now() - this.lastRenewAt < STABLE_MS;
    this.lastRenewAt = Date.now();
    if (repeat) this.retry('Renewing the session.');
    else this.connect();
  }

  retry(message) {
    if (this.stopped) return;
    const delay = backoffDelay(this.attempt++);
    this.o.onState('waiting', message, Date.now() + delay);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  // drop abandons the current socket without going through closed().
  drop(code) {
    const ws = this.ws;
    this.ws = null;
    this.stopPings();
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = null;
      try { ws.close(code); } catch { /* already closing */ }
    }
  }

  startPings() {
    this.stopPings();
    this.pingTimer = setInterval(() => {
      if (Date.now() - this.lastFrameAt > DEAD_MS) {
        this.drop(Close.NORMAL);
        this.o.onDrop();
        this.retry('The server stopped answering.');
        return;
      }
      this.send({ type: 'ping' });
    }, PING_EVERY_MS);
  }

  stopPings() {
    clearInterval(this.pingTimer);
    this.pingTimer = 0;
  }
}
