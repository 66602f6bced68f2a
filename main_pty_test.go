//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal pair: the master for the test, the
// slave for the child's stdin, stdout and stderr.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Fatalf("ptsname: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// echoOn reports whether the terminal echoes what is typed.
func echoOn(t *testing.T, tty *os.File) bool {
	t.Helper()
	tio, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return tio.Lflag&unix.ECHO != 0
}

// Ensure Ctrl-C (typed on the terminal, so the kernel sends SIGINT) and
// SIGTERM at a password prompt end chatctl at once with exit 130: no user
// is added, and the terminal echoes again.
func TestPasswordPromptInterrupt(t *testing.T) {
	for _, tc := range []struct {
		name      string
		interrupt func(p *os.Process, master *os.File) error
	}{
		{"CtrlC", func(_ *os.Process, m *os.File) error { _, err := m.Write([]byte{0x03}); return err }},
		{"SIGTERM", func(p *os.Process, _ *os.File) error { return p.Signal(syscall.SIGTERM) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "c.db")
			master, slave := openPTY(t)
			var out syncBuffer
			go func() {
				buf := make([]byte, 1024)
				for {
					n, err := master.Read(buf)
					out.Write(buf[:n])
					if err != nil {
						return
					}
				}
			}()
			cmd := exec.Command("chatctl", "--db", db, "user", "add", "alice")
			cmd.Env = hermeticEnv()
			cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
			// Its own session with the pty as controlling terminal, so
			// Ctrl-C reaches it as SIGINT the way it does in a shell.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			t.Cleanup(func() {
				if cmd.ProcessState == nil {
					_ = cmd.Process.Kill()
					<-exited
				}
			})

			// Wait until the prompt is up and echo is off: chatctl is
			// reading the password.
			waitUntil(t, "the password prompt", func() bool {
				return strings.Contains(out.String(), "Password for alice: ") && !echoOn(t, slave)
			})
			start := time.Now()
			if err := tc.interrupt(cmd.Process, master); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-exited:
				code := cmd.ProcessState.ExitCode()
				if code != 130 {
					t.Fatalf("exit %d (%v), want 130; terminal:\n%s", code, err, out.String())
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("chatctl still waits at the prompt 10s after the interrupt; terminal:\n%s", out.String())
			}
			t.Logf("exited %s after the interrupt", time.Since(start).Round(time.Millisecond))
			if !echoOn(t, slave) {
				t.Error("echo is still off after the interrupt")
			}
			waitUntil(t, "the error line", func() bool { return strings.Contains(out.String(), "error: interrupted") })

			// Nothing was written: alice does not exist.
			list := exec.Command("chatctl", "--db", db, "user", "list", "-o", "json")
			list.Env = hermeticEnv()
			b, err := list.Output()
			if err != nil {
				// A store that was never created holds no user either.
				if _, serr := os.Stat(db); os.IsNotExist(serr) {
					return
				}
				t.Fatalf("user list: %v", err)
			}
			var users []map[string]any
			if err := json.Unmarshal(b, &users); err != nil {
				t.Fatalf("user list -o json: %v: %s", err, b)
			}
			for _, u := range users {
				if u["username"] == "alice" {
					t.Fatalf("alice was added: %s", b)
				}
			}
		})
	}
}
