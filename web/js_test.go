package web

import (
	"os/exec"
	"testing"
)

// Ensure the chat client's DOM-free modules (rooms.js, socket.js) pass their
// unit tests. Skipped where node is not installed: the client itself needs
// no node, only these tests do.
func TestChatJS(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	out, err := exec.Command(node, "--test", "testdata/chat.test.mjs").CombinedOutput()
	if err != nil {
		t.Fatalf("node --test: %v\n%s", err, out)
	}
}
