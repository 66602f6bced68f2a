// Package buildinfo tells which chatctl this is: the module version, the
// VCS revision and time the Go toolchain stamped into the binary, and the
// Go version and platform it was built with. `chatctl version` prints it
// and /metrics exports it as chatctl_build_info.
//
// The Go toolchain stamps the VCS fields when it builds inside a git
// checkout with git installed (-buildvcs=auto, the default). A build with
// -buildvcs=false, or from a source tree without .git, has none: those
// fields read "unknown". A release built from a tarball can still name its
// version with -ldflags "-X github.com/chatctl/chatctl/buildinfo.Version=v1.2.3".
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"sync"
	"time"
)

// Unknown is the value of a field the binary does not carry.
const Unknown = "unknown"

// Version, when set at link time (-X), overrides the module version that
// the toolchain stamped. Read it only through Get.
var Version string

// Info describes this binary. Its fields are never empty: what is not
// known reads Unknown.
type Info struct {
	// Version is the module version: a tag such as v1.2.3, a
	// pseudo-version for an untagged commit, or "devel" for a build from a
	// source tree that the toolchain could not version.
	Version string `json:"version"`
	// Revision is the VCS commit the binary was built from.
	Revision string `json:"revision"`
	// Time is the commit time, RFC 3339 UTC.
	Time string `json:"time"`
	// Modified reports a build from a working tree with uncommitted
	// changes. False when Revision is unknown.
	Modified bool `json:"modified"`
	// GoVersion is the toolchain, e.g. go1.26.8.
	GoVersion string `json:"go_version"`
	// OS and Arch are the target platform.
	OS   string `json:"os"`
	Arch string `json:"arch"`
}

// Get returns the build information of the running binary.
func Get() Info { return get() }

var get = sync.OnceValue(func() Info {
	bi, _ := debug.ReadBuildInfo()
	return fromBuildInfo(bi, Version)
})

// fromBuildInfo turns the toolchain's build information (nil when the
// binary has none) and a link-time version into an Info.
func fromBuildInfo(bi *debug.BuildInfo, linked string) Info {
	info := Info{
		Version:   Unknown,
		Revision:  Unknown,
		Time:      Unknown,
		GoVersion: runtime.Version(),
		OS:        runtime.GOOS,
		Arch:      runtime.GOARCH,
	}
	if bi != nil {
		if bi.GoVersion != "" {
			info.GoVersion = bi.GoVersion
		}
		switch v := bi.Main.Version; v {
		case "":
		case "(devel)":
			info.Version = "devel"
		default:
			info.Version = v
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if s.Value != "" {
					info.Revision = s.Value
				}
			case "vcs.time":
				if t, err := time.Parse(time.RFC3339, s.Value); err == nil {
					info.Time = t.UTC().Format(time.RFC3339)
				}
			case "vcs.modified":
				info.Modified = s.Value == "true"
			}
		}
	}
	if linked != "" {
		info.Version = linked
	}
	return info
}

// ShortRevision is the first 12 characters of a revision, as git shows
// them; Unknown stays Unknown.
func (i Info) ShortRevision() string {
	if len(i.Revision) > 12 && i.Revision != Unknown {
		return i.Revision[:12]
	}
	return i.Revision
}
