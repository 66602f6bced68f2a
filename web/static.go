package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"regexp"
	"strings"
	"sync"
	"time"
)

const (
	// cacheRevalidate lets a browser keep a copy but ask (cheaply, with
	// If-None-Match) before every use. Used for pages and unversioned URLs.
	cacheRevalidate = "no-cache"
	// cacheImmutable is only sent for a URL whose ?v= matches the content
	// hash, so the URL changes whenever the bytes do.
	cacheImmutable = "public, max-age=31536000, immutable"
	// minGzipSize skips compressing files too small to gain from it.
	minGzipSize = 1024
)

// contentTypes is explicit rather than mime.TypeByExtension, whose answer
// depends on the host's /etc/mime.types; browsers refuse module scripts and
// (with nosniff) stylesheets sent with the wrong type.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".json": "application/json",
	".png":  "image/png",
	".svg":  "image/svg+xml",
	".ico":  "image/x-icon",
	".txt":  "text/plain; charset=utf-8",
	"":      "text/plain; charset=utf-8", // LICENSE, NOTICE, VERSION
}

// asset is one embedded file, ready to serve.
type asset struct {
	body  []byte
	ctype string
	hash  string // hex prefix of SHA-256 of body; the ETag and the ?v= value

	gzOnce sync.Once
	gz     []byte // gzip of body, or nil when not worth it; set by gzOnce
}

// gzipped compresses lazily: the Swagger bundle is 1.7 MB and most
// processes (the CLI) never serve it.
func (a *asset) gzipped() []byte {
	a.gzOnce.Do(func() {
		if len(a.body) < minGzipSize || !compressible(a.ctype) {
			return
		}
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf) // default level: BestCompression costs 3x the time for ~2% less
		zw.Write(a.body)
		zw.Close()
		if buf.Len() < len(a.body) {
			a.gz = buf.Bytes()
		}
	})
	return a.gz
}

func compressible(ctype string) bool {
	return strings.HasPrefix(ctype, "text/") || strings.HasPrefix(ctype, "application/json") ||
		strings.HasPrefix(ctype, "image/svg")
}

// site serves one embedded tree (chat or docs) at /<prefix>.
type site struct {
	prefix string            // "/chat"
	files  map[string]*asset // keyed by URL path, e.g. "/chat/app.js"
	index  *asset            // the page, served for /chat and /chat/
}

// mustSite loads dir from fsys. It panics only if the embedded tree itself is
// unreadable or lacks index.html, which is a build mistake, not a run-time one.
func mustSite(fsys fs.FS, dir string) *site {
	s, err := newSite(fsys, dir)
	if err != nil {
		panic(fmt.Sprintf("web: %v", err))
	}
	return s
}

func newSite(fsys fs.FS, dir string) (*site, error) {
	s := &site{prefix: "/" + dir, files: map[string]*asset{}}
	err := fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		ctype, ok := contentTypes[path.Ext(p)]
		if !ok {
			ctype = "application/octet-stream"
		}
		s.files["/"+p] = &asset{body: body, ctype: ctype, hash: hashOf(body)}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", dir, err)
	}
	idx := s.files[s.prefix+"/index.html"]
	if idx == nil {
		return nil, fmt.Errorf("load %s: no index.html", dir)
	}
	// Rewrite after every asset is hashed, so references can be versioned.
	idx.body = s.versionRefs(idx.body)
	idx.hash = hashOf(idx.body)
	s.index = idx
	return s, nil
}

func hashOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// refAttr matches src="/…" and href="/…" in our own (hand-written) pages.
var refAttr = regexp.MustCompile(`\b(src|href)="(/[^"?#]+)"`)

// versionRefs appends ?v=<hash> to every attribute naming an embedded file of
// this site, so that URL may be cached as immutable. Unknown paths are left
// as they are (the tests insist there are none).
func (s *site) versionRefs(page []byte) []byte {
	return refAttr.ReplaceAllFunc(page, func(m []byte) []byte {
		sub := refAttr.FindSubmatch(m)
		a := s.files[string(sub[2])]
		if a == nil {
			return m
		}
		return fmt.Appendf(nil, `%s="%s?v=%s"`, sub[1], sub[2], a.hash)
	})
}

// ServeHTTP serves the page for /prefix and /prefix/, an asset for
// /prefix/NAME, and 404 for anything else (including index.html by name,
// directories and paths outside the tree).
func (s *site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	var a *asset
	switch p := r.URL.Path; p {
	case s.prefix, s.prefix + "/":
		a = s.index
	case s.prefix + "/index.html":
		// One canonical URL for the page keeps the ?v= scheme simple.
	default:
		a = s.files[p]
	}
	if a == nil {
		http.NotFound(w, r)
		return
	}

	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("X-Content-Type-Options", "nosniff")
	if h.Get("Content-Security-Policy") == "" {
		h.Set("Content-Security-Policy", CSP)
	}
	if a != s.index && r.URL.Query().Get("v") == a.hash {
		h.Set("Cache-Control", cacheImmutable)
	} else {
		h.Set("Cache-Control", cacheRevalidate)
	}

	body, etag := a.body, `"`+a.hash+`"`
	if gz := a.gzipped(); gz != nil {
		h.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r) {
			// A different representation needs a different strong ETag.
			body, etag = gz, `"`+a.hash+`-gz"`
			h.Set("Content-Encoding", "gzip")
		}
	}
	h.Set("ETag", etag)
	// ServeContent handles If-None-Match (304), Range and HEAD. The zero
	// modtime keeps it from sending Last-Modified: the ETag is the validator.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// acceptsGzip reports whether the client listed gzip in Accept-Encoding
// without q=0. Good enough for browsers, which all send "gzip, deflate, br".
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(name), "gzip") {
			q := strings.ReplaceAll(params, " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}
