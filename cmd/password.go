package cmd

import (
	"bufio"
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
	// ReadPassword reads one line without echo.
	ReadPassword() (string, error)
}

// osTerminal prompts on the process's real stdin.
type osTerminal struct{ in io.Reader }

func (t osTerminal) IsTerminal() bool {
	f, ok := t.in.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (t osTerminal) ReadPassword() (string, error) {
	b, err := term.ReadPassword(int(t.in.(*os.File).Fd()))
	return string(b), err
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
	pw, err := a.terminal.ReadPassword()
	fmt.Fprintln(stderr)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	fmt.Fprint(stderr, "Repeat password: ")
	again, err := a.terminal.ReadPassword()
	fmt.Fprintln(stderr)
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
