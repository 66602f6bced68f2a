package cmd

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/chatctl/chatctl/admin"
	"github.com/chatctl/chatctl/auth"
	"github.com/chatctl/chatctl/store"
)

func (a *app) newUserCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "user",
		Short: "Manage users",
		Long: `Add, list and change the users who can sign in. Usernames are 1 to 32 of
a-z, 0-9, '.', '_' and '-', start with a letter or digit, and are matched
case-insensitively. Passwords are never taken from the command line.`,
		Example: `  chatctl user add alice --role admin
  echo "$PASSWORD" | chatctl user add bob --password-stdin
  chatctl user list -o json`,
	}
	c.AddCommand(a.newUserAddCommand(), a.newUserListCommand(), a.newUserShowCommand(),
		a.newUserPasswdCommand(), a.newUserRoleCommand(),
		a.newUserStateCommand("disable", "Disable a user and revoke their tokens", true),
		a.newUserStateCommand("enable", "Enable a disabled user", false),
		a.newUserRemoveCommand(), a.newUserUnlockCommand())
	return c
}

func (a *app) newUserAddCommand() *cobra.Command {
	var req admin.AddUserRequest
	var fromStdin bool
	c := &cobra.Command{
		Use:   "add NAME",
		Short: "Add a user",
		Long: `Add a user. On a terminal the password is prompted for twice without echo;
scripts pass it on stdin with --password-stdin, or import an existing bcrypt
hash ($2a$, $2b$ or $2y$, as passlib and htpasswd -B write) with --hash.`,
		Example: `  chatctl user add alice --role admin
  printf '%s\n' "$PASSWORD" | chatctl user add bob --password-stdin
  chatctl user add carol --hash '$2b$12$…'      # imported from passlib
  chatctl user add bot --password-stdin --ignore-exists < pw.txt   # idempotent provisioning`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Name = args[0]
			if req.Hash != "" && fromStdin {
				return fmt.Errorf("--hash and --password-stdin cannot be used together")
			}
			// Check what we can before prompting for a password.
			if _, err := auth.NormalizeName(req.Name); err != nil {
				return err
			}
			if err := auth.ValidateRole(req.Role); err != nil {
				return err
			}
			return a.withAdmin(func(adm admin.Admin) error {
				if req.Hash == "" {
					// Skip the prompt when the user exists and that is fine.
					if req.IgnoreExists {
						if u, err := adm.User(cmd.Context(), req.Name); err == nil {
							return a.printAdded(cmd, admin.AddUserResult{User: u})
						}
					}
					pw, err := a.readPassword(cmd.ErrOrStderr(), fromStdin, "Password for "+req.Name+": ")
					if err != nil {
						return err
					}
					req.Password = pw
				}
				res, err := adm.AddUser(cmd.Context(), req)
				if err != nil {
					return err
				}
				return a.printAdded(cmd, res)
			})
		},
	}
	f := c.Flags()
	f.StringVar(&req.Role, "role", "user", "role: admin or user")
	f.BoolVar(&fromStdin, "password-stdin", false, "read the password from the first line of stdin")
	f.StringVar(&req.Hash, "hash", "", "import this bcrypt hash instead of a password")
	f.BoolVar(&req.IgnoreExists, "ignore-exists", false, "succeed without changes when the user already exists")
	return c
}

func (a *app) printAdded(cmd *cobra.Command, res admin.AddUserResult) error {
	if a.json() {
		return writeJSON(cmd.OutOrStdout(), res)
	}
	if res.Created {
		fmt.Fprintf(cmd.ErrOrStderr(), "added user %s (role %s)\n", res.User.Username, res.User.Role)
	} else {
		fmt.Fprintf(cmd.ErrOrStderr(), "user %s already exists; left unchanged\n", res.User.Username)
	}
	return nil
}

func (a *app) newUserListCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List users",
		Example: "  chatctl user list\n  chatctl user list -o json | jq -r '.[].username'",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withAdminFor(store.Read, func(adm admin.Admin) error {
				users, err := adm.Users(cmd.Context())
				if err != nil {
					return err
				}
				if a.json() {
					if users == nil {
						users = []admin.UserInfo{}
					}
					return writeJSON(cmd.OutOrStdout(), users)
				}
				if len(users) == 0 {
					fmt.Fprintln(cmd.ErrOrStderr(), "no users yet; add one with: chatctl user add NAME")
					return nil
				}
				tw := table(cmd.OutOrStdout())
				fmt.Fprintln(tw, "USERNAME\tROLE\tSTATUS\tCREATED")
				for _, u := range users {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.Username, u.Role, status(u), short(u.CreatedAt))
				}
				return tw.Flush()
			})
		},
	}
}

func status(u admin.UserInfo) string {
	if u.Disabled {
		return "disabled"
	}
	return "enabled"
}

func (a *app) printUser(w io.Writer, u admin.UserInfo) error {
	if a.json() {
		return writeJSON(w, u)
	}
	tw := table(w)
	fmt.Fprintf(tw, "username:\t%s\n", u.Username)
	fmt.Fprintf(tw, "role:\t%s\n", u.Role)
	fmt.Fprintf(tw, "status:\t%s\n", status(u))
	fmt.Fprintf(tw, "created:\t%s\n", when(u.CreatedAt))
	fmt.Fprintf(tw, "updated:\t%s\n", when(u.UpdatedAt))
	return tw.Flush()
}

func (a *app) newUserShowCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "show NAME",
		Short:   "Show one user",
		Example: "  chatctl user show alice\n  chatctl user show alice -o json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withAdminFor(store.Read, func(adm admin.Admin) error {
				u, err := adm.User(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return a.printUser(cmd.OutOrStdout(), u)
			})
		},
	}
}

// changed prints the outcome of a change: the user as JSON with -o json,
// else msg on stderr.
func (a *app) changed(cmd *cobra.Command, u admin.UserInfo, msg string) error {
	if a.json() {
		return writeJSON(cmd.OutOrStdout(), u)
	}
	fmt.Fprintln(cmd.ErrOrStderr(), msg)
	return nil
}

func (a *app) newUserPasswdCommand() *cobra.Command {
	var fromStdin bool
	c := &cobra.Command{
		Use:   "passwd NAME",
		Short: "Change a user's password (revokes their tokens)",
		Long: `Set a new password. Every access token and session of the user ends at once,
so they must sign in again.`,
		Example: "  chatctl user passwd alice\n  printf '%s\\n' \"$NEW\" | chatctl user passwd alice --password-stdin",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withAdminFor(store.Write, func(adm admin.Admin) error {
				// Fail on an unknown user before asking for a password.
				if _, err := adm.User(cmd.Context(), args[0]); err != nil {
					return err
				}
				pw, err := a.readPassword(cmd.ErrOrStderr(), fromStdin, "New password for "+args[0]+": ")
				if err != nil {
					return err
				}
				u, err := adm.SetPassword(cmd.Context(), args[0], pw)
				if err != nil {
					return err
				}
				return a.changed(cmd, u, fmt.Sprintf("password changed for %s; their tokens are revoked", u.Username))
			})
		},
	}
	c.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the password from the first line of stdin")
	return c
}

func (a *app) newUserRoleCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "role NAME ROLE",
		Short:   "Set a user's role (admin or user)",
		Example: "  chatctl user role alice admin",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withAdminFor(store.Write, func(adm admin.Admin) error {
				u, err := adm.SetRole(cmd.Context(), args[0], args[1])
				if err != nil {
					return err
				}
				return a.changed(cmd, u, fmt.Sprintf("%s now has role %s", u.Username, u.Role))
			})
		},
	}
}

func (a *app) newUserStateCommand(verb, short string, disable bool) *cobra.Command {
	return &cobra.Command{
		Use:     verb + " NAME",
		Short:   short,
		Example: "  chatctl user " + verb + " alice",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withAdminFor(store.Write, func(adm admin.Admin) error {
				u, err := adm.SetDisabled(cmd.Context(), args[0], disable)
				if err != nil {
					return err
				}
				msg := fmt.Sprintf("enabled %s", u.Username)
				if disable {
					msg = fmt.Sprintf("disabled %s; their tokens are revoked", u.Username)
				}
				return a.changed(cmd, u, msg)
			})
		},
	}
}

func (a *app) newUserRemoveCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "remove NAME",
		Aliases: []string{"rm"},
		Short:   "Remove a user (their tokens stop working at once)",
		Example: "  chatctl user remove alice",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// Report the stored (lower-case) name, as the other commands do.
			name, err := auth.NormalizeName(args[0])
			if err != nil {
				return err
			}
			return a.withAdminFor(store.Write, func(adm admin.Admin) error {
				if err := adm.RemoveUser(cmd.Context(), name); err != nil {
					return err
				}
				if a.json() {
					return writeJSON(cmd.OutOrStdout(), map[string]any{"username": name, "removed": true})
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "removed %s\n", name)
				return nil
			})
		},
	}
}

func (a *app) newUserUnlockCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "unlock NAME",
		Short: "Clear a user's failed-login counters in the running server",
		Long: `Clear the failed-login counters of a user in the running server, from every
client address, so that the next login is not answered 429. The counters of
client addresses themselves stay.

The counters live only in the memory of chatctl serve. Without a running
server there is nothing to clear: the command says so and succeeds.`,
		Example: "  chatctl user unlock alice\n  chatctl user unlock alice -o json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withAdminFor(store.Write, func(adm admin.Admin) error {
				res, err := adm.UnlockUser(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if a.json() {
					return writeJSON(cmd.OutOrStdout(), res)
				}
				if !res.Live {
					fmt.Fprintf(cmd.ErrOrStderr(), "no server is running: failed-login counters live only in its memory, so %s has none to clear\n", res.Username)
					return nil
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "unlocked %s: cleared %d failed-login counters in the running server\n", res.Username, res.Cleared)
				return nil
			})
		},
	}
}
