package cmd

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/chatctl/chatctl/buildinfo"
)

func (a *app) newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, VCS revision and Go version of this binary",
		Long: `Print what this binary is: the module version, the VCS revision and commit
time it was built from (and whether the working tree had uncommitted
changes), the Go version and the platform. "chatctl --version" prints the
first line. A binary built without VCS information (go build
-buildvcs=false, or from a tree without .git) says "unknown" for those.
A running server exports the same as the chatctl_build_info gauge on
/metrics.`,
		Example: `  chatctl version
  chatctl --version
  chatctl version -o json | jq -r .revision`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := buildinfo.Get()
			w := cmd.OutOrStdout()
			if a.json() {
				return writeJSON(w, info)
			}
			fmt.Fprintln(w, versionLine(info))
			tw := table(w)
			rev := info.Revision
			if info.Modified {
				rev += " (modified)"
			}
			fmt.Fprintf(tw, "revision:\t%s\n", rev)
			fmt.Fprintf(tw, "time:\t%s\n", info.Time)
			fmt.Fprintf(tw, "go:\t%s\n", info.GoVersion)
			fmt.Fprintf(tw, "platform:\t%s/%s\n", info.OS, info.Arch)
			return tw.Flush()
		},
	}
}

// versionLine is what --version prints: "chatctl VERSION (REVISION[,
// modified], GOVERSION OS/ARCH)".
func versionLine(info buildinfo.Info) string {
	rev := info.ShortRevision()
	if info.Modified {
		rev += ", modified"
	}
	return fmt.Sprintf("chatctl %s (revision %s, %s %s/%s)", info.Version, rev, info.GoVersion, info.OS, info.Arch)
}
