package api

import (
	"bufio"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chatctl/chatctl/configs"
)

// Ensure the WebSocket Origin check compares scheme, host and port, for
// the server's own origin and for ws.allowed_origins entries.
func TestWSOrigin(t *testing.T) {
	tests := []struct {
		name    string
		allowed []string
		proxies []string
		tls     bool
		host    string // Host header
		remote  string // peer address
		header  map[string]string
		want    bool
	}{
		{name: "NoOrigin", host: "chat.example:8000", want: true},
		{name: "SameOrigin", host: "chat.example:8000", header: map[string]string{"Origin": "http://chat.example:8000"}, want: true},
		{name: "SameOriginCase", host: "Chat.Example:8000", header: map[string]string{"Origin": "HTTP://chat.EXAMPLE:8000"}, want: true},
		{name: "DefaultPort", host: "chat.example", header: map[string]string{"Origin": "http://chat.example:80"}, want: true},
		{name: "OtherPort", host: "chat.example:8000", header: map[string]string{"Origin": "http://chat.example:9000"}},
		{name: "OtherPortImplied", host: "chat.example:8000", header: map[string]string{"Origin": "http://chat.example"}},
		{name: "OtherScheme", host: "chat.example:8000", header: map[string]string{"Origin": "https://chat.example:8000"}},
		{name: "OtherHost", host: "chat.example:8000", header: map[string]string{"Origin": "http://evil.example:8000"}},
		{name: "Null", host: "chat.example", header: map[string]string{"Origin": "null"}},
		{name: "TLS", tls: true, host: "chat.example", header: map[string]string{"Origin": "https://chat.example"}, want: true},
		{name: "TLSRefusesHTTP", tls: true, host: "chat.example", header: map[string]string{"Origin": "http://chat.example"}},
		{name: "AllowedEntry", allowed: []string{"https://app.example"}, host: "chat.example", header: map[string]string{"Origin": "https://app.example:443"}, want: true},
		{name: "AllowedEntryCase", allowed: []string{"https://App.Example/"}, host: "chat.example", header: map[string]string{"Origin": "https://app.example"}, want: true},
		{name: "AllowedEntryOtherScheme", allowed: []string{"https://app.example"}, host: "chat.example", header: map[string]string{"Origin": "http://app.example"}},
		{name: "AllowedEntryOtherPort", allowed: []string{"https://app.example"}, host: "chat.example", header: map[string]string{"Origin": "https://app.example:8443"}},
		{name: "AllowedStar", allowed: []string{"*"}, host: "chat.example", header: map[string]string{"Origin": "http://evil.example"}, want: true},
		{name: "TrustedProxyProto", proxies: []string{"10.0.0.1"}, remote: "10.0.0.1:5555", host: "chat.example",
			header: map[string]string{"Origin": "https://chat.example", "X-Forwarded-Proto": "https"}, want: true},
		{name: "TrustedProxyHost", proxies: []string{"10.0.0.1"}, remote: "10.0.0.1:5555", host: "backend:8000",
			header: map[string]string{"Origin": "https://chat.example", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "chat.example"}, want: true},
		{name: "UntrustedProxyProto", remote: "10.0.0.1:5555", host: "chat.example",
			header: map[string]string{"Origin": "https://chat.example", "X-Forwarded-Proto": "https"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := configs.Default()
			cfg.WS.AllowedOrigins = tc.allowed
			s := &Server{cfg: cfg, proxies: parsePrefixes(tc.proxies)}
			s.live.Store(liveFrom(cfg))
			r := httptest.NewRequest(http.MethodGet, "/ws", nil)
			r.Host = tc.host
			if tc.remote != "" {
				r.RemoteAddr = tc.remote
			}
			if tc.tls {
				r.TLS = &tls.ConnectionState{}
			}
			for k, v := range tc.header {
				r.Header.Set(k, v)
			}
			if got := s.checkOrigin(r); got != tc.want {
				t.Fatalf("checkOrigin = %v, want %v", got, tc.want)
			}
		})
	}
}

// Ensure an HTTP/1.0 upgrade request is refused (RFC 6455 §4.2.1), not
// answered with 101, and that the same request in HTTP/1.1 upgrades.
func TestWSHTTP10(t *testing.T) {
	e := newEnv(t, nil)
	e.addUser("alice", "")
	tok := e.issue("alice")
	for _, tc := range []struct {
		proto string
		want  int
	}{{"HTTP/1.0", http.StatusBadRequest}, {"HTTP/1.1", http.StatusSwitchingProtocols}} {
		t.Run(strings.ReplaceAll(tc.proto, "/", ""), func(t *testing.T) {
			conn, err := net.Dial("tcp", strings.TrimPrefix(e.ts.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			req := "GET /ws " + tc.proto + "\r\nHost: " + strings.TrimPrefix(e.ts.URL, "http://") + "\r\n" +
				"Authorization: Bearer " + tok + "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
				"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
			if _, err := conn.Write([]byte(req)); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
}
