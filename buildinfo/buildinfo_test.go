package buildinfo

import (
	"runtime"
	"runtime/debug"
	"testing"
)

// Ensure the toolchain's VCS stamps become the version, revision, time and
// modified flag, and that a binary without them says "unknown".
func TestFromBuildInfo(t *testing.T) {
	stamped, err := debug.ParseBuildInfo(`go	go1.26.8
path	github.com/chatctl/chatctl
mod	github.com/chatctl/chatctl	v0.3.1-0.20261130121100-4ddc450abcde+dirty
build	-trimpath=true
build	vcs=git
build	vcs.revision=4ddc450abcde0123456789abcdef0123456789ab
build	vcs.time=2026-11-30T12:11:00+01:00
build	vcs.modified=true
`)
	if err != nil {
		t.Fatal(err)
	}
	noVCS, err := debug.ParseBuildInfo("go\tgo1.26.8\npath\tgithub.com/chatctl/chatctl\nmod\tgithub.com/chatctl/chatctl\t(devel)\t\nbuild\t-buildvcs=false\n")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		bi     *debug.BuildInfo
		linked string
		want   Info
	}{
		{"stamped", stamped, "", Info{
			Version: "v0.3.1-0.20261130121100-4ddc450abcde+dirty", Revision: "4ddc450abcde0123456789abcdef0123456789ab",
			Time: "2026-11-30T11:11:00Z", Modified: true, GoVersion: "go1.26.8", OS: runtime.GOOS, Arch: runtime.GOARCH,
		}},
		{"linked version wins", stamped, "v1.0.0", Info{
			Version: "v1.0.0", Revision: "4ddc450abcde0123456789abcdef0123456789ab",
			Time: "2026-11-30T11:11:00Z", Modified: true, GoVersion: "go1.26.8", OS: runtime.GOOS, Arch: runtime.GOARCH,
		}},
		{"buildvcs=false", noVCS, "", Info{
			Version: "devel", Revision: Unknown, Time: Unknown, GoVersion: "go1.26.8", OS: runtime.GOOS, Arch: runtime.GOARCH,
		}},
		{"no build info", nil, "", Info{
			Version: Unknown, Revision: Unknown, Time: Unknown, GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fromBuildInfo(tt.bi, tt.linked); got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
	if got := fromBuildInfo(stamped, "").ShortRevision(); got != "4ddc450abcde" {
		t.Errorf("ShortRevision = %q", got)
	}
	if got := fromBuildInfo(noVCS, "").ShortRevision(); got != Unknown {
		t.Errorf("ShortRevision = %q, want unknown", got)
	}
}
