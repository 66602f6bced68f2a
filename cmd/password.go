package cmd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/chatctl/chatctl/auth"
)

// terminal is where passwords are prompted for.
type terminal interface {
	// IsTerminal reports whether stdin is an interactive terminal.
	IsTerminal() bool
	// ReadPassword reads one line without echo. When ctx is done first
	// (Ctrl-C, SIGTERM) it returns ErrInterrupted at once, with the
	// terminal as it was before.
	ReadPassword(ctx context.Context) (string, error)
}

// ErrInterrupted is returned when SIGINT or SIGTERM arrives while a
// password is being read. Main exits 130 for it, as shells do for Ctrl-C.
var ErrInterrupted = errors.New("interrupted")

// osTerminal prompts on the process's real stdin.
type osTerminal struct{ in io.Reader }

func (t osTerminal) IsTerminal() bool {
	f, ok := t.in.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (t osTerminal) ReadPassword(ctx context.Context) (string, error) {
	fd := int(t.in.(*os.File).Fd())
	// term.ReadPassword turns echo off and restores it only when the read
	// returns; an interrupt returns before that, so keep the state here.
	state, stateErr := term.GetState(fd)
	type result struct {
		pw  []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		// On an interrupt this goroutine stays blocked in read; the
		// process is about to exit.
		pw, err := term.ReadPassword(fd)
		done <- result{pw, err}
	}()
	select {
	case r := <-done:
		return string(r.pw), r.err
	case <-ctx.Done():
		if stateErr == nil {
			_ = term.Restore(fd, state) // echo back on
		}
		return "", ErrInterrupted
	}
}

// ErrNotTerminal is returned when a password is needed, stdin is not a
// terminal and --password-stdin was not given.
var ErrNotTerminal = errors.New("stdin is not a terminal: pass --password-stdin to read the password from stdin")

// readPassword gets a password: from stdin with fromStdin (one line), else
// by prompting twice without echo on a terminal. Prompts go to stderr so
// stdout stays clean for scripts.
func (a *app) readPassword(stderr io.Writer, fromStdin bool, prompt string) (string, error) {
	if fromStdin {
		return readPasswordLine(a.stdin)
	}
	if !a.terminal.IsTerminal() {
		return "", ErrNotTerminal
	}
	fmt.Fprint(stderr, prompt)
	pw, err := a.terminal.ReadPassword(a.ctx)
	fmt.Fprintln(stderr)
	if errors.Is(err, ErrInterrupted) {
		return "", err
	}
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	fmt.Fprint(stderr, "Repeat password: ")
	again, err := a.terminal.ReadPassword(a.ctx)
	fmt.Fprintln(stderr)
	if errors.Is(err, ErrInterrupted) {
		return "", err
	}
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	if !auth.SamePassword(pw, again) {
		return "", errors.New("the passwords do not match")
	}
	return pw, nil
}

// readPasswordLine reads a password from the first line of r. A trailing
// newline (as echo and most files add) is not part of it.
func readPasswordLine(r io.Reader) (string, error) {
	// Read a little over bcrypt's limit so an overlong password is reported
	// as such rather than cut.
	br := bufio.NewReader(io.LimitReader(r, 4096))
	line, err := br.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password from stdin: %w", err)
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return "", errors.New("no password on stdin (want one line)")
	}
	return line, nil
}
