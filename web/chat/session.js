// Session: the OAuth2 tokens of the signed-in user (SPEC §5, POST /token).
//
// Where tokens live: in memory, mirrored to sessionStorage so that a reload
// keeps the user signed in and the page can show the rooms again. We chose
// sessionStorage over localStorage because it is per tab and is cleared when
// the tab closes, so a refresh token does not outlive the tab or leak to
// other tabs. Cookies are not an option: the API takes bearer tokens only.
// An XSS bug could read sessionStorage, but it could equally read memory;
// the strict CSP (no inline script) is what guards against that.
//
// Caveat: "Duplicate tab" copies sessionStorage. Both tabs then hold the same
// single-use refresh token; the second to refresh trips the server's reuse
// detection, which revokes the family and signs both tabs out. That is the
// safe failure, and signing in again fixes it.

const STORAGE_KEY = 'chatctl.session';

// Refresh this long before expiry, at most: the server closes a socket with
// 4001 at exp and warns with token_expired up to 5 s before it, and timers in
// background tabs may fire up to a minute late.
const MAX_MARGIN_MS = 60_000;
const MIN_MARGIN_MS = 10_000;
// After a failed refresh that may be transient (server down, 5xx, 429).
const REFRESH_RETRY_MS = 5_000;

/** AuthError is a failed call to /token or /users/me, with a message fit to show. */
export class AuthError extends Error {
  /**
   * @param {string} message shown to the user
   * @param {{status?: number, fatal?: boolean}} opts fatal means the session
   *   is over (bad credentials, spent or revoked refresh token).
   */
  constructor(message, { status = 0, fatal = false } = {}) {
    super(message);
    this.status = status;
    this.fatal = fatal;
  }
}

// postToken sends one OAuth2 token request and returns the parsed success
// body, or throws an AuthError whose message says what the user can do.
async function postToken(fields) {
  let res;
  try {
    res = await fetch('/token', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
      body: new URLSearchParams(fields),
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch {
    throw new AuthError('Cannot reach the server. Check your connection and try again.');
  }
  const body = await res.json().catch(() => ({}));
  if (res.ok && body.access_token) return body;
  const detail = typeof body.detail === 'string' ? body.detail : '';
  switch (true) {
    case res.status === 401 || body.error === 'invalid_grant':
      throw new AuthError(detail || 'Incorrect username or password', { status: res.status, fatal: true });
    case res.status === 429: {
      const after = parseInt(res.headers.get('Retry-After') || '', 10);
      const wait = Number.isFinite(after) ? ` Try again in ${after} s.` : ' Try again later.';
      throw new AuthError('Too many attempts.' + wait, { status: 429 });
    }
    case res.status === 400 || res.status === 422:
      throw new AuthError(detail || 'Enter a username and a password.', { status: res.status, fatal: fields.grant_type === 'refresh_token' });
    default:
      throw new AuthError(`The server failed (HTTP ${res.status}). Try again in a moment.`, { status: res.status });
  }
}

export class Session {
  /**
   * @param {object} t tokens: access_token, refresh_token, expires_at (ms), username
   * @param {{onRefreshed?: (s: Session) => void, onEnded?: (why: string) => void}} hooks
   *   onRefreshed runs after every rotation (the app sends {"type":"auth"});
   *   onEnded runs once when the session can no longer be renewed.
   */
  constructor(t, hooks = {}) {
    this.access = t.access_token;
    this.refreshToken = t.refresh_token;
    this.expiresAt = t.expires_at;
    this.username = t.username || '';
    this.hooks = hooks;
    this.inflight = null; // the one running refresh, shared by all callers
    this.timer = 0;
    this.ended = false;
  }

  /** signIn runs the password grant and returns a started Session. */
  static async signIn(username, password, hooks) {
    const body = await postToken({ grant_type: 'password', username, password });
    const s = new Session(fromTokenResponse(body), hooks);
    s.username = (await s.fetchMe()).username || username;
    s.start();
    return s;
  }

  /** restore returns the Session saved by this tab before a reload, or null. */
  static restore(hooks) {
    try {
      const t = JSON.parse(sessionStorage.getItem(STORAGE_KEY) || 'null');
      if (t && t.access_token && t.refresh_token) {
        const s = new Session(t, hooks);
        s.start();
        return s;
      }
    } catch { /* unreadable or storage disabled: sign in again */ }
    return null;
  }

  start() {
    this.save();
    this.schedule();
  }

  /** fetchMe returns GET /users/me for the current token (SPEC §5). */
  async fetchMe() {
    let res;
    try {
      res = await fetch('/users/me', { headers: { Authorization: 'Bearer ' + this.access }, cache: 'no-store', credentials: 'omit' });
    } catch {
      throw new AuthError('Cannot reach the server.');
    }
    if (res.status === 401) throw new AuthError('Your session has expired. Sign in again.', { status: 401, fatal: true });
    if (!res.ok) throw new AuthError(`The server failed (HTTP ${res.status}).`, { status: res.status });
    return res.json();
  }

  /** expiresWithin reports whether the access token expires within ms. */
  expiresWithin(ms) {
    return Date.now() + ms >= this.expiresAt;
  }

  /**
   * fresh returns an access token good for at least MIN_MARGIN_MS more,
   * refreshing first when needed. Used before opening a WebSocket.
   */
  async fresh() {
    if (this.expiresWithin(MIN_MARGIN_MS)) await this.refresh();
    return this.access;
  }

  /**
   * refresh rotates the tokens (grant_type=refresh_token). Concurrent calls
   * share one request: a refresh token is single use, and spending it twice
   * would make the server revoke the whole session.
   */
  refresh() {
    if (this.ended) return Promise.reject(new AuthError('Signed out.', { fatal: true }));
    if (!this.inflight) {
      this.inflight = postToken({ grant_type: 'refresh_token', refresh_token: this.refreshToken })
        .then((body) => {
          const t = fromTokenResponse(body);
          this.access = t.access_token;
          this.refreshToken = t.refresh_token;
          this.expiresAt = t.expires_at;
          this.save(); // before anything else: the old refresh token is spent
          this.schedule();
          this.hooks.onRefreshed?.(this);
          return this.access;
        })
        .catch((err) => {
          if (err.fatal) {
            this.end('Your session has expired. Sign in again.');
          } else if (!this.ended) {
            clearTimeout(this.timer);
            this.timer = setTimeout(() => this.refresh().catch(() => {}), REFRESH_RETRY_MS);
          }
          throw err;
        })
        .finally(() => { this.inflight = null; });
    }
    return this.inflight;
  }

  // schedule arms the timer for the next refresh: margin is a quarter of
  // the lifetime, clamped to [MIN_MARGIN_MS, MAX_MARGIN_MS].
  schedule() {
    clearTimeout(this.timer);
    const left = this.expiresAt - Date.now();
    const margin = Math.min(MAX_MARGIN_MS, Math.max(MIN_MARGIN_MS, left / 4));
    this.timer = setTimeout(() => this.refresh().catch(() => {}), Math.max(0, left - margin));
  }

  /** checkSoon refreshes now if a throttled background timer left us late. */
  checkSoon() {
    if (!this.ended && this.expiresWithin(MAX_MARGIN_MS)) this.refresh().catch(() => {});
  }

  save() {
    try {
      sessionStorage.setItem(STORAGE_KEY, JSON.stringify({
        access_token: this.access, refresh_token: this.refreshToken,
        expires_at: this.expiresAt, username: this.username,
      }));
    } catch { /* storage full or disabled: the session still works until reload */ }
  }

  /** end forgets the tokens; why (if any) is passed to onEnded. */
  end(why = '') {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.timer);
    this.access = this.refreshToken = '';
    try { sessionStorage.removeItem(STORAGE_KEY); } catch { /* ignore */ }
    this.hooks.onEnded?.(why);
  }
}

function fromTokenResponse(body) {
  const ttl = Number(body.expires_in) > 0 ? Number(body.expires_in) : 60;
  return {
    access_token: body.access_token,
    refresh_token: body.refresh_token,
    expires_at: Date.now() + ttl * 1000,
  };
}
