//go:build unix

package configs

import (
	"io/fs"
	"os"
	"syscall"
)

// checkModes is true where Unix permission bits are meaningful.
const checkModes = true

// owner returns the uid that owns the file fi describes.
func owner(fi fs.FileInfo) (uint32, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return st.Uid, true
}

func euid() uint32 { return uint32(os.Geteuid()) }
