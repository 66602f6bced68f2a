//go:build !unix

package admin

import "io/fs"

// fileOwner cannot tell a file's owner here (Windows ACLs are another
// model); the owner and mode checks are skipped.
func fileOwner(fs.FileInfo) (uint32, bool) { return 0, false }

func euid() uint32 { return 0 }

// unixModes is false: Windows reports no owner and other mode bits.
const unixModes = false
