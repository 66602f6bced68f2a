//go:build unix

package store

import (
	"errors"
	"syscall"
)

// isReadOnlyFS reports whether err says the file system is mounted
// read-only.
func isReadOnlyFS(err error) bool { return errors.Is(err, syscall.EROFS) }
