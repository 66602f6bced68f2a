//go:build unix

package admin

import (
	"io/fs"
	"os"
	"syscall"
)

// fileOwner returns the uid owning the file fi describes.
func fileOwner(fi fs.FileInfo) (uint32, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return st.Uid, true
}

func euid() uint32 { return uint32(os.Geteuid()) }

// unixModes is true where file types and permission bits are Unix's.
const unixModes = true
