package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
)

// closedURL returns the URL of a port on which nothing listens.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// Ensure each pre-flight failure becomes a one-line error naming its cause.
func TestCheck(t *testing.T) {
	s := newFakeServer(t, 1)
	notOurs := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(notOurs.Close)
	tests := []struct {
		name    string
		target  Target
		token   string
		ws, raw bool
		wantErr error
		wantMsg string
	}{
		{"OK", Target{URL: s.URL}, tokenFor("u0"), true, false, nil, ""},
		{"ErrServerDown", Target{URL: closedURL(t)}, "x", false, false, ErrServerDown, "connection refused"},
		{"ErrServerDownRaw", Target{URL: closedURL(t)}, "", false, true, ErrServerDown, "connection refused"},
		{"ErrNotChatctl", Target{URL: notOurs.URL}, "x", false, false, ErrNotChatctl, "404"},
		{"ErrNotChatctlWS", Target{URL: notOurs.URL}, "", false, true, ErrNotChatctl, "404"},
		{"ErrUnauthorized", Target{URL: s.URL}, "tok-nobody", false, false, ErrUnauthorized, "401"},
		{"ErrForbiddenOrigin", Target{URL: s.URL, Origin: "http://evil.example"}, tokenFor("u0"), true, false, ErrForbidden, "403"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(context.Background(), tt.target, tt.token, tt.ws, tt.raw)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil {
				return
			}
			if msg := err.Error(); !strings.Contains(msg, tt.wantMsg) || strings.Contains(msg, "\n") {
				t.Fatalf("message %q should be one line containing %q", msg, tt.wantMsg)
			}
		})
	}
}

// Ensure the runners refuse to start against a bad target.
func TestRunnersPreflight(t *testing.T) {
	ctx := context.Background()
	down := Target{URL: closedURL(t)}
	if _, err := RunHTTP(ctx, HTTPOptions{Target: down, Token: "x"}); !errors.Is(err, ErrServerDown) {
		t.Errorf("RunHTTP: %v", err)
	}
	if _, err := RunLogin(ctx, LoginOptions{Target: down}); !errors.Is(err, ErrServerDown) {
		t.Errorf("RunLogin: %v", err)
	}
	s := newFakeServer(t, 1)
	if _, err := RunLogin(ctx, LoginOptions{Target: Target{URL: s.URL}, Username: "u0", Password: "wrong"}); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("RunLogin bad password: %v", err)
	}
	if _, err := RunHTTP(ctx, HTTPOptions{Target: Target{URL: "ftp://x"}}); err == nil {
		t.Error("RunHTTP accepted a bad URL")
	}
}

// Ensure transport errors get the labels that results report.
func TestErrKind(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, "refused"},
		{fmt.Errorf("read: %w", syscall.ECONNRESET), "reset"},
		{&net.OpError{Op: "socket", Err: os.NewSyscallError("socket", syscall.EMFILE)}, "fd_limit"},
		{fmt.Errorf("bind: %w", syscall.EADDRNOTAVAIL), "no_ports"},
		{context.DeadlineExceeded, "timeout"},
		{fmt.Errorf("x: %w", os.ErrDeadlineExceeded), "timeout"},
		{context.Canceled, "canceled"},
		{io.ErrUnexpectedEOF, "eof"},
		{&net.DNSError{Err: "no such host", Name: "nope"}, "dns"},
		{errors.New("weird"), "other"},
	}
	for _, tt := range tests {
		if got := errKind(tt.err); got != tt.want {
			t.Errorf("errKind(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
