package api

import (
	"errors"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/chatctl/chatctl/admin"
	"github.com/chatctl/chatctl/auth"
	"github.com/chatctl/chatctl/store"
)

// tokenResponse is the body of a successful POST /token (RFC 6749 §5.1).
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	// Scope is set only when the client asked for one (RFC 6749 §5.1:
	// required when the granted scope differs from the requested one).
	Scope *string `json:"scope,omitempty"`
}

// oauthError answers /token failures: {"detail"} as the seed, plus the
// RFC 6749 §5.2 error code and the same message as error_description.
func oauthError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Cache-Control", "no-store")
	encode(w, status, detail{Detail: msg, Error: code, ErrorDescription: msg})
}

// repeated names a form parameter given more than once, which RFC 6749
// §3.2 forbids ("Request and response parameters MUST NOT be included
// more than once"): taking the first or the last would let a proxy and
// the server read different requests.
func repeated(form url.Values) string {
	var names []string
	for k, v := range form {
		if len(v) > 1 {
			names = append(names, k)
		}
	}
	if len(names) == 0 {
		return ""
	}
	sort.Strings(names)
	return clipParam(strings.Join(names, ", "), 64)
}

// clipParam shortens client input quoted back in an error to at most n bytes.
func clipParam(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// grantedScope answers a requested scope (RFC 6749 §3.3). chatctl defines
// no scopes: a token carries the user's role and nothing narrower. The
// server may ignore a requested scope, and then must say what it granted:
// for a non-empty request the response carries "scope": "" (nothing
// narrower than the role). As the seed's FastAPI form does, any scope is
// accepted, so Swagger UI and OAuth2 libraries that always send one work.
func grantedScope(form url.Values) *string {
	if strings.TrimSpace(form.Get("scope")) == "" {
		return nil
	}
	none := ""
	return &none
}

// parseForm reads the form body of /token. Like the seed's
// OAuth2PasswordRequestForm it takes urlencoded or multipart forms; JSON
// is refused with a message saying what is expected.
func parseForm(r *http.Request, maxBody int64) (status int, msg string) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var err error
	switch mt {
	case "application/x-www-form-urlencoded":
		err = r.ParseForm()
	case "multipart/form-data":
		err = r.ParseMultipartForm(maxBody)
	default:
		return http.StatusUnprocessableEntity, "expected form fields (Content-Type: application/x-www-form-urlencoded): grant_type, username, password or refresh_token"
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return http.StatusRequestEntityTooLarge, "request body too large"
		}
		return http.StatusUnprocessableEntity, "invalid form body: " + err.Error()
	}
	return 0, ""
}

// handleToken is the OAuth2 token endpoint: the password grant (the
// default, as in the seed) and the refresh_token grant.
func (s *Server) handleToken() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if status, msg := parseForm(r, s.cfg.HTTP.MaxBody); status != 0 {
			oauthError(w, status, "invalid_request", msg)
			return
		}
		if names := repeated(r.PostForm); names != "" {
			oauthError(w, http.StatusBadRequest, "invalid_request", "parameter given more than once: "+names)
			return
		}
		switch gt := r.PostForm.Get("grant_type"); gt {
		case "", "password":
			s.passwordGrant(w, r)
		case "refresh_token":
			s.refreshGrant(w, r)
		default:
			oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type must be password or refresh_token")
		}
	})
}

// missing lists required form fields that are absent or empty.
func missing(r *http.Request, fields ...string) string {
	var out []string
	for _, f := range fields {
		if r.PostForm.Get(f) == "" {
			out = append(out, f)
		}
	}
	return strings.Join(out, ", ")
}

func (s *Server) passwordGrant(w http.ResponseWriter, r *http.Request) {
	if m := missing(r, "username", "password"); m != "" {
		oauthError(w, http.StatusUnprocessableEntity, "invalid_request", "field required: "+m)
		return
	}
	name, password := r.PostForm.Get("username"), r.PostForm.Get("password")
	ip := clientAddr(r, s.proxies)
	// An invalid name is checked (and costs bcrypt work, like any failed
	// login) but counted per address only: it keeps no state of its own.
	account, nameErr := auth.NormalizeName(name)
	// Take the tokens before any bcrypt work, so a flood is refused
	// cheaply; a success gives them back, an overload (503) does not.
	grant, ok, wait := s.loginRate.admit(ip, account)
	if !ok {
		s.metrics.logins.WithLabelValues("limited").Inc()
		w.Header().Set("Retry-After", retryAfter(wait))
		oauthError(w, http.StatusTooManyRequests, "temporarily_unavailable", "Too many failed logins; try again later")
		return
	}
	var pair admin.TokenPair
	var err error
	if perr := s.hashes.do(r.Context(), func() {
		pair, err = s.svc.Login(r.Context(), name, password, ip)
	}); perr != nil {
		if errors.Is(perr, errBusy) {
			w.Header().Set("Retry-After", "1")
			oauthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", perr.Error())
			return
		}
		s.hashErr(w, r, perr)
		return
	}
	if errors.Is(err, admin.ErrInvalidCredentials) {
		s.metrics.logins.WithLabelValues("failed").Inc()
		if nameErr != nil {
			// Never log the raw input: it can be 64 KB of anything.
			s.log.Info("login failed", "user", "", "reason", "invalid username", "client", ip)
		} else {
			s.log.Info("login failed", "user", account, "client", ip)
		}
		w.Header().Set("WWW-Authenticate", "Bearer")
		oauthError(w, http.StatusUnauthorized, "invalid_grant", "Incorrect username or password")
		return
	}
	s.loginRate.succeeded(grant)
	if err != nil {
		s.tokenError(w, r, err)
		return
	}
	s.metrics.logins.WithLabelValues("ok").Inc()
	s.metrics.tokens.WithLabelValues("issued", "").Inc()
	writeTokens(w, r, pair)
}

func (s *Server) refreshGrant(w http.ResponseWriter, r *http.Request) {
	if m := missing(r, "refresh_token"); m != "" {
		oauthError(w, http.StatusUnprocessableEntity, "invalid_request", "field required: "+m)
		return
	}
	ip := clientAddr(r, s.proxies)
	ipKey := addrKey(ip)
	if ok, wait := s.loginRate.ip.take(ipKey); !ok {
		w.Header().Set("Retry-After", retryAfter(wait))
		oauthError(w, http.StatusTooManyRequests, "temporarily_unavailable", "Too many failed attempts; try again later")
		return
	}
	pair, err := s.svc.Refresh(r.Context(), r.PostForm.Get("refresh_token"), ip)
	switch {
	case errors.Is(err, store.ErrRefreshReused):
		s.metrics.tokens.WithLabelValues("rejected", "refresh reused").Inc()
		s.log.Warn("refresh token reused; session revoked", "client", ip)
		oauthError(w, http.StatusBadRequest, "invalid_grant", "Refresh token already used; the session is revoked")
	case errors.Is(err, store.ErrRefreshInvalid):
		s.metrics.tokens.WithLabelValues("rejected", "refresh invalid").Inc()
		oauthError(w, http.StatusBadRequest, "invalid_grant", "Invalid or expired refresh token")
	case err != nil:
		s.loginRate.ip.refund(ipKey)
		s.tokenError(w, r, err)
	default:
		s.loginRate.ip.refund(ipKey)
		s.metrics.tokens.WithLabelValues("refreshed", "").Inc()
		writeTokens(w, r, pair)
	}
}

func writeTokens(w http.ResponseWriter, r *http.Request, p admin.TokenPair) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	encode(w, http.StatusOK, tokenResponse{AccessToken: p.AccessToken, TokenType: "bearer", ExpiresIn: p.ExpiresIn, RefreshToken: p.RefreshToken, Scope: grantedScope(r.PostForm)})
}

// tokenError answers a failed grant that was not the client's fault: a
// store that is down gets the OAuth2 error body (RFC 6749 §5.2,
// temporarily_unavailable) with Retry-After; anything else as writeError.
func (s *Server) tokenError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, store.ErrUnavailable) {
		s.log.Warn("store unavailable", "route", r.Pattern, "err", err)
		w.Header().Set("Retry-After", storeRetryAfter)
		oauthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", storeDownDetail)
		return
	}
	writeError(w, r, s.log, err)
}
