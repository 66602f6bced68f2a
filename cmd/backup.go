package cmd

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/chatctl/chatctl/admin"
	"github.com/chatctl/chatctl/store"
)

func (a *app) newBackupCommand() *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:   "backup FILE|-",
		Short: "Write a consistent copy of the store to a file",
		Long: `Write a consistent copy of the store (one bbolt read transaction: writers carry
on meanwhile) to FILE, whether or not "chatctl serve" runs: while it holds
the store, the copy comes through its admin socket. The copy is written to a
temporary file beside FILE (mode 0600), fsynced, checked (bbolt's consistency
check, chatctl's schema) and only then renamed to FILE. An existing FILE is
replaced only with --force. "-" writes the copy to stdout (not a terminal).

The copy holds every password hash and signing key: keep it as private as
the store. Restore it with "chatctl restore FILE" while the server is
stopped.`,
		Example: `  chatctl backup /var/backups/chatctl-$(date +%F).db
  chatctl backup nightly.db --force -o json
  chatctl backup - | gzip > chatctl.db.gz`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] == "" {
				return errors.New("backup: FILE must not be empty")
			}
			if args[0] == "-" {
				return a.backupToStdout(cmd)
			}
			cfg, err := a.config()
			if err != nil {
				return err
			}
			return a.withAdminFor(store.Read, func(adm admin.Admin) error {
				res, err := admin.BackupFile(cmd.Context(), adm, args[0], cfg.DB, force)
				if err != nil {
					return err
				}
				if a.json() {
					return writeJSON(cmd.OutOrStdout(), res)
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "wrote backup %s (%s; %d users, %d rooms, %d messages)\n",
					res.Path, size(res.Bytes), res.Users, res.Rooms, res.Messages)
				return err
			})
		},
	}
	c.Flags().BoolVar(&force, "force", false, "replace FILE when it exists")
	return c
}

// backupToStdout streams the copy to stdout, which must not be a terminal.
func (a *app) backupToStdout(cmd *cobra.Command) error {
	out := cmd.OutOrStdout()
	if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return errors.New("backup: refusing to write a binary copy to a terminal; redirect stdout or give a FILE")
	}
	if a.json() {
		return errors.New("backup: -o json needs a FILE: stdout carries the copy")
	}
	return a.withAdminFor(store.Read, func(adm admin.Admin) error {
		n, err := adm.Backup(cmd.Context(), out)
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stderr, "wrote backup to stdout (%s)\n", size(n))
		return nil
	})
}

func (a *app) newRestoreCommand() *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:   "restore FILE|-",
		Short: "Replace the store with a backup (server stopped)",
		Long: `Replace the store with a copy written by "chatctl backup". The server must be
stopped: restore refuses while "chatctl serve" (or any process) holds the
store. FILE is checked first (a bbolt file that passes bbolt's consistency
check and has chatctl's schema); an existing store is replaced only with
--force. The copy goes to a temporary file beside the store (mode 0600), is
fsynced and checked again, then renamed over the store, so a failure at any
point leaves the old store as it was. "-" reads the backup from stdin.`,
		Example: `  chatctl restore /var/backups/chatctl-2026-11-30.db
  chatctl --db /var/lib/chatctl/chatctl.db restore nightly.db --force
  gunzip -c chatctl.db.gz | chatctl restore - --force`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] == "" {
				return errors.New("restore: FILE must not be empty")
			}
			if args[0] == "-" && a.terminal.IsTerminal() {
				return errors.New("restore: refusing to read a backup from a terminal; redirect stdin or give a FILE")
			}
			cfg, err := a.config()
			if err != nil {
				return err
			}
			res, err := admin.Restore(cmd.Context(), cfg, args[0], a.stdin, force)
			if err != nil {
				return err
			}
			if a.json() {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			verb := "restored"
			if res.Replaced {
				verb = "replaced"
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s store %s from %s (%s; %d users, %d rooms, %d messages)\n",
				verb, res.Store, res.From, size(res.Bytes), res.Users, res.Rooms, res.Messages)
			return err
		},
	}
	c.Flags().BoolVar(&force, "force", false, "replace the store when it exists")
	return c
}

// size formats a byte count for people.
func size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d bytes", n)
	}
	v, suffix := float64(n)/unit, "KiB"
	for _, s := range []string{"MiB", "GiB", "TiB"} {
		if v < unit {
			break
		}
		v, suffix = v/unit, s
	}
	return fmt.Sprintf("%.1f %s, %d bytes", v, suffix, n)
}
