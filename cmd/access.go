package cmd

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/chatctl/chatctl/admin"
	"github.com/chatctl/chatctl/store"
)

// newAccessCommand is `chatctl access`, after ntfy's: list, set or reset
// access rules (SPEC §8).
func (a *app) newAccessCommand() *cobra.Command {
	var reset bool
	c := &cobra.Command{
		Use:   "access [USER|'*' ROOM-PATTERN read-write|read-only|deny] | --reset USER|'*' [ROOM-PATTERN]",
		Short: "List, set or reset who may read and write which rooms",
		Long: `Without arguments, list the access rules. With USER ROOM-PATTERN PERMISSION,
add a rule (or replace the rule of the same user and pattern). With --reset
USER [ROOM-PATTERN], remove the user's rules, or its rule for that pattern.

USER is a user or '*' (everyone; quote it for the shell). ROOM-PATTERN is a
room name, or a prefix ending in * (ops-* names ops-alerts and ops-db; * alone
names every room). PERMISSION is read-write, read-only (join and read, no
send) or deny (no join; the room is left out of the user's directory).

Precedence, as in ntfy: any rule of the user beats every '*' rule; among one
user's rules (or among the '*' rules) the longest pattern wins. Rooms no rule
names get rooms.default_access (read-write by default). Rules never apply to
admins. Private rooms and direct messages are for their members only, admins
included, whatever the rules say (see "chatctl room create --private").

A rule that takes read access away closes the room at once for the user's
live connections: they get {"type":"left","room":R,"reason":"forbidden"}.`,
		Example: `  chatctl access                              # list the rules
  chatctl access '*' 'ops-*' deny             # nobody reads ops-… rooms
  chatctl access bob 'ops-*' read-only        # … but bob may read them
  chatctl access alice announcements read-write
  chatctl access '*' announcements read-only
  chatctl access --reset bob 'ops-*'          # remove one rule
  chatctl access --reset bob                  # remove all of bob's rules
  chatctl access -o json`,
		Args: cobra.MaximumNArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case reset:
				if len(args) < 1 || len(args) > 2 {
					return errors.New("--reset takes USER|'*' [ROOM-PATTERN]")
				}
				req := admin.ResetAccessRequest{User: args[0]}
				if len(args) == 2 {
					req.Pattern = args[1]
				}
				return a.withAdminFor(store.Write, func(adm admin.Admin) error {
					res, err := adm.ResetAccess(cmd.Context(), req)
					if err != nil {
						return err
					}
					if a.json() {
						return writeJSON(cmd.OutOrStdout(), res)
					}
					what := "rules of " + res.User
					if res.Pattern != "" {
						what = fmt.Sprintf("rule of %s for %s", res.User, res.Pattern)
					}
					fmt.Fprintf(cmd.ErrOrStderr(), "removed %d %s\n", res.Removed, what)
					return nil
				})
			case len(args) == 3:
				rule := admin.AccessRule{User: args[0], Pattern: args[1], Permission: args[2]}
				return a.withAdminFor(store.Write, func(adm admin.Admin) error {
					r, err := adm.SetAccess(cmd.Context(), rule)
					if err != nil {
						return err
					}
					if a.json() {
						return writeJSON(cmd.OutOrStdout(), r)
					}
					fmt.Fprintf(cmd.ErrOrStderr(), "granted %s %s on %s\n", r.User, r.Permission, r.Pattern)
					return nil
				})
			case len(args) != 0:
				return errors.New("give USER|'*' ROOM-PATTERN PERMISSION, or nothing to list the rules")
			}
			return a.withAdminFor(store.Read, func(adm admin.Admin) error {
				rules, err := adm.AccessRules(cmd.Context())
				if err != nil {
					return err
				}
				if a.json() {
					if rules == nil {
						rules = []admin.AccessRule{}
					}
					return writeJSON(cmd.OutOrStdout(), rules)
				}
				if len(rules) == 0 {
					fmt.Fprintln(cmd.ErrOrStderr(), "no access rules: every user may read and write every public room (rooms.default_access)")
					return nil
				}
				tw := table(cmd.OutOrStdout())
				fmt.Fprintln(tw, "USER\tROOMS\tPERMISSION")
				for _, r := range rules {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", r.User, r.Pattern, r.Permission)
				}
				return tw.Flush()
			})
		},
	}
	c.Flags().BoolVar(&reset, "reset", false, "remove the rules of USER (all, or the one for ROOM-PATTERN)")
	return c
}

// newRoomAccessCommands are the private-room commands of `chatctl room`.
func (a *app) newRoomAccessCommands() []*cobra.Command {
	var members []string
	var private bool
	create := &cobra.Command{
		Use:   "create NAME --private [--member USER]…",
		Short: "Create a private room: only its members see, join and read it",
		Long: `Create a private room with its first members. Only members see it in their
directory, join it and read it, admins included (an admin adds itself with
"room add" to read one). Public rooms need no creating: the first join creates
them. Making a room with public history private keeps its history, for the
members only.`,
		Example: `  chatctl room create board --private --member alice --member bob
  chatctl room create board --private -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !private {
				return errors.New("public rooms are created by their first join; give --private to create a private room")
			}
			req := admin.CreateRoomRequest{Name: args[0], Private: true, Members: members}
			return a.withAdminFor(store.Write, func(adm admin.Admin) error {
				m, err := adm.CreateRoom(cmd.Context(), req)
				if err != nil {
					return err
				}
				return a.printMembers(cmd, m, "created private room "+m.Room)
			})
		},
	}
	create.Flags().BoolVar(&private, "private", false, "make the room private (required)")
	create.Flags().StringArrayVar(&members, "member", nil, "a first member (repeat for more)")

	membersCmd := &cobra.Command{
		Use:   "members NAME",
		Short: "List the members of a private room or a direct message",
		Example: `  chatctl room members board
  chatctl room members '@alice+bob'
  chatctl room members board -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withAdminFor(store.Read, func(adm admin.Admin) error {
				m, err := adm.RoomMembers(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return a.printMembers(cmd, m, "")
			})
		},
	}
	member := func(use, short, long, example, done string, call func(admin.Admin, *cobra.Command, string, string) (admin.RoomMembers, error)) *cobra.Command {
		return &cobra.Command{
			Use: use, Short: short, Long: long, Example: example,
			Args: cobra.ExactArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				return a.withAdminFor(store.Write, func(adm admin.Admin) error {
					m, err := call(adm, cmd, args[0], args[1])
					if err != nil {
						return err
					}
					return a.printMembers(cmd, m, fmt.Sprintf(done, strings.ToLower(args[1]), m.Room))
				})
			},
		}
	}
	add := member("add NAME USER", "Add a user to a private room",
		"Add an existing user to a private room: from now on it may see, join and read it.",
		"  chatctl room add board carol\n  chatctl room add board root    # an admin adds itself to read the room",
		"added %s to %s",
		func(adm admin.Admin, cmd *cobra.Command, room, user string) (admin.RoomMembers, error) {
			return adm.AddMember(cmd.Context(), room, user)
		})
	kick := member("kick NAME USER", "Remove a user from a private room",
		`Remove a user from a private room. Its live connections leave the room at
once ({"type":"left","room":NAME,"reason":"forbidden"}) and get nothing more of it.`,
		"  chatctl room kick board carol",
		"removed %s from %s",
		func(adm admin.Admin, cmd *cobra.Command, room, user string) (admin.RoomMembers, error) {
			return adm.KickMember(cmd.Context(), room, user)
		})
	return []*cobra.Command{create, membersCmd, add, kick}
}

// printMembers prints a room's members: JSON, or one per line with done
// (when not empty) on stderr.
func (a *app) printMembers(cmd *cobra.Command, m admin.RoomMembers, done string) error {
	if a.json() {
		return writeJSON(cmd.OutOrStdout(), m)
	}
	if done != "" {
		fmt.Fprintln(cmd.ErrOrStderr(), done)
	}
	if len(m.Members) == 0 && done == "" {
		fmt.Fprintf(cmd.ErrOrStderr(), "%s has no members\n", m.Room)
	}
	for _, u := range m.Members {
		fmt.Fprintln(cmd.OutOrStdout(), u)
	}
	return nil
}
