package cmd

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/chatctl/chatctl/admin"
	"github.com/chatctl/chatctl/store"
)

func (a *app) newAuditCommand() *cobra.Command {
	var since string
	var q admin.AuditQuery
	c := &cobra.Command{
		Use:   "audit",
		Short: "Show the audit log: admin actions and sign-in events",
		Long: `Show the audit log kept in the store: every admin action (user add, remove,
passwd, role, disable, enable, unlock; token issue and revoke; key rotate and
retire; room delete), whether it came from this CLI on the store ("local"),
through the running server's socket ("socket", with your operating-system
user) or the /admin API (the admin's username and client address), and the
sign-in events that matter (login.ok, login.failed with the reason,
refresh.reused, user.signup). Passwords, hashes and tokens are never in it.

Entries are printed oldest first, newest last, as a log reads; --limit keeps
the newest N (default 100, at most 10000). --since takes a duration back from
now (1h, 30m, 720h) or an RFC 3339 time. --user matches the actor or the
target; --action matches an action or a group (user, token, key, login).
audit.retention and audit.max_entries bound what is kept.`,
		Example: `  chatctl audit
  chatctl audit --since 1h --action login.failed
  chatctl audit --user alice --limit 20 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if since != "" {
				t, err := admin.ParseSince(since, time.Now())
				if err != nil {
					return fmt.Errorf("--since: %w", err)
				}
				q.Since = t
			}
			if q.Limit < 1 || q.Limit > admin.MaxAuditLimit {
				return fmt.Errorf("--limit must be between 1 and %d, got %d", admin.MaxAuditLimit, q.Limit)
			}
			return a.withAdminFor(store.Read, func(adm admin.Admin) error {
				list, err := adm.Audit(cmd.Context(), q)
				if err != nil {
					return err
				}
				if a.json() {
					if list == nil {
						list = []admin.AuditEntry{}
					}
					return writeJSON(cmd.OutOrStdout(), list)
				}
				if len(list) == 0 {
					fmt.Fprintln(cmd.ErrOrStderr(), "no audit entries match")
					return nil
				}
				tw := table(cmd.OutOrStdout())
				fmt.Fprintln(tw, "TIME\tACTION\tACTOR\tFROM\tTARGET\tOUTCOME\tDETAIL")
				for _, e := range list {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", short(e.Time), e.Action, dash(e.Actor), dash(e.From), dash(e.Target), e.Outcome, dash(e.Detail))
				}
				return tw.Flush()
			})
		},
	}
	f := c.Flags()
	f.StringVar(&since, "since", "", "only entries newer than this: a duration (1h) or an RFC 3339 time")
	f.StringVar(&q.User, "user", "", "only entries whose actor or target is NAME")
	f.StringVar(&q.Action, "action", "", "only this action (login.failed) or group (user, token, key, login)")
	f.IntVar(&q.Limit, "limit", admin.DefaultAuditLimit, "the newest N entries")
	return c
}

// dash shows an empty table cell as "-".
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
