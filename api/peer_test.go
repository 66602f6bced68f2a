package api

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chatctl/chatctl/store"
)

// Ensure the admin socket's listener closes a connection from a process
// of another user before serving it: the request gets no answer and does
// nothing, and the refusal is logged with the uid. A peer of our own uid
// (or root) is served.
func TestAdminSocketRefusesOtherUsers(t *testing.T) {
	e := newEnv(t, nil)
	path := filepath.Join(socketDir(t), "admin.sock")
	ln, err := listenSocket(path)
	if err != nil {
		t.Fatal(err)
	}
	uids := make(chan uint32, 1) // the fake credentials of the next peer
	uids <- 65534
	pl := &peerListener{Listener: ln, log: e.srv.log, peerUID: func(net.Conn) (uint32, bool, error) {
		uid := <-uids
		return uid, true, nil
	}}
	hs := &http.Server{Handler: e.srv.SocketHandler(), ReadHeaderTimeout: time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		hs.Serve(pl)
	}()
	t.Cleanup(func() {
		hs.Close()
		<-done
	})

	send := func() (string, error) {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		body := `{"name":"mallory","password":"` + testPassword + `","role":"admin"}`
		io.WriteString(c, "POST /admin/users HTTP/1.1\r\nHost: chatctl\r\nContent-Type: application/json\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body)
		line, err := bufio.NewReader(c).ReadString('\n')
		return line, err
	}
	line, err := send()
	if err == nil || line != "" {
		t.Fatalf("another user's request was answered: %q %v", line, err)
	}
	if _, err := e.db.User("mallory"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another user's request was served: %v", err)
	}
	if logs := e.logs.String(); !strings.Contains(logs, "refused a connection from another user") || !strings.Contains(logs, `"uid":65534`) {
		t.Errorf("refusal not logged with the uid: %s", logs)
	}

	uids <- 0 // root is trusted
	if line, err := send(); err != nil || !strings.Contains(line, "201") {
		t.Fatalf("root's request = %q %v, want 201", line, err)
	}
}
