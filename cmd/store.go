package cmd

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/chatctl/chatctl/store"
	"github.com/chatctl/chatctl/store/storecopy"
)

// progressAuto is the size of a copy (in messages) from which progress is
// shown even when stderr is not a terminal.
const progressAuto = 100000

func (a *app) newStoreCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "store",
		Short: "Move the whole store between a bbolt file and PostgreSQL",
		Long: `The store holds users, signing keys, sessions, the deny list, rooms with their
messages, access rules, private rooms with their members, read markers, what
the config file declared, and the audit log: in a bbolt file (the default) or
in PostgreSQL (the "store" setting, --store, CHATCTL_STORE). "store copy"
moves all of it from one to the other.`,
		Example: "  chatctl store copy --from chatctl.db --to postgres://chatctl@db.internal/chatctl",
	}
	c.AddCommand(a.newStoreCopyCommand())
	return c
}

func (a *app) newStoreCopyCommand() *cobra.Command {
	var from, to string
	var progress bool
	c := &cobra.Command{
		Use:   "copy --from SRC --to DST",
		Short: "Copy everything from one store into a new, empty one",
		Long: `Copy every user (with its password hash, role, state and token version), signing
key, session and refresh token (as hashes), deny-list entry, room (with its
epoch and last id), message (with its id), access rule, private room (with its
members), read marker, declared list (the users and rules the config file
declared when last applied) and audit entry from SRC into DST.
Each is a bbolt file or a postgres:// URL. Tokens issued before the copy keep
working on DST, and each room goes on at its last id + 1.

Stop every "chatctl serve" on SRC and DST first: a bbolt SRC held by a server
is refused, and a PostgreSQL SRC is read in one snapshot, so writes made while
the copy runs would be missing from DST. DST must be empty: a missing file is
created, and an empty database gets chatctl's schema. Nothing is held in
memory whole: records stream in batches, and into PostgreSQL in one
transaction.

Afterwards the records of each kind are counted on both sides, and each
room's last id and number of messages are compared. Any difference is an
error (exit 1) that names it, and DST is left empty (a file the copy created
is removed). The counts are printed (-o json for an object). Progress goes to
stderr every 10,000 messages, at most once a second, when stderr is a
terminal, when SRC holds 100,000 messages or more, or with --progress.
Copying back the other way is the rollback.`,
		Example: `  chatctl store copy --from /var/lib/chatctl/chatctl.db --to 'postgres://chatctl@db.internal:5432/chatctl?sslmode=verify-full'
  chatctl store copy --from postgres://chatctl@db.internal/chatctl --to rollback.db -o json
  PGPASSFILE=~/.pgpass chatctl store copy --from chatctl.db --to postgres://chatctl@127.0.0.1/chatctl --progress`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("from") || !cmd.Flags().Changed("to") {
				return argsError{fmt.Errorf("--from SRC and --to DST are both required")}
			}
			show := progress || isTerminal(a.stderr)
			opts := store.CopyOptions{Every: time.Second, Progress: func(done, total int64) {
				if show || total >= progressAuto {
					fmt.Fprintf(a.stderr, "copied %d/%d messages\n", done, total)
				}
			}}
			rep, err := storecopy.Run(cmd.Context(), from, to, opts)
			if err == nil || errors.Is(err, store.ErrMismatch) {
				if perr := printCopy(cmd.OutOrStdout(), rep, a.json()); err == nil {
					err = perr
				}
			}
			switch {
			case err != nil && cmd.Context().Err() != nil:
				return fmt.Errorf("store copy: %w; %s was left empty", ErrInterrupted, rep.To)
			case err != nil:
				return fmt.Errorf("store copy: %w", err)
			}
			return nil
		},
	}
	c.Flags().StringVar(&from, "from", "", "the store to copy: a bbolt file or a postgres:// URL")
	c.Flags().StringVar(&to, "to", "", "the new, empty store: a bbolt file (created) or a postgres:// URL")
	c.Flags().BoolVar(&progress, "progress", false, "report progress on stderr whatever the size and stderr")
	return c
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// printCopy prints the report of a copy: a table of counts, or JSON.
func printCopy(w io.Writer, rep storecopy.Report, asJSON bool) error {
	if asJSON {
		if rep.Mismatches == nil {
			rep.Mismatches = []string{}
		}
		return writeJSON(w, rep)
	}
	if rep.OK {
		fmt.Fprintf(w, "copied %s to %s in %.1fs\n", rep.From, rep.To, rep.Seconds)
	} else {
		fmt.Fprintf(w, "the copy of %s to %s does not match it (%.1fs); the target was left empty\n", rep.From, rep.To, rep.Seconds)
	}
	tw := table(w)
	fmt.Fprintln(tw, "RECORDS\tSOURCE\tTARGET")
	src, dst := rep.Source.List(), rep.Target.List()
	for i := range src {
		mark := ""
		if src[i].N != dst[i].N {
			mark = "\tMISMATCH"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d%s\n", src[i].Name, src[i].N, dst[i].N, mark)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	result := "match"
	if !rep.OK && len(rep.Mismatches) > 0 {
		result = fmt.Sprintf("checked, %d differences", len(rep.Mismatches))
	}
	_, err := fmt.Fprintf(w, "last id and messages of %d rooms: %s\n", rep.RoomsChecked, result)
	return err
}
