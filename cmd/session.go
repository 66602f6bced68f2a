package cmd

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/chatctl/chatctl/admin"
	"github.com/chatctl/chatctl/store"
)

func (a *app) newTokenListCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list NAME",
		Short: "List a user's live sessions",
		Long: `List the user's sessions: each sign-in starts one (a family of refresh tokens,
rotated on every refresh). Shows when it started, when it was last used, from
which client address, and when it expires.`,
		Example: "  chatctl token list alice\n  chatctl token list alice -o json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withAdminFor(store.Read, func(adm admin.Admin) error {
				list, err := adm.Sessions(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if a.json() {
					if list == nil {
						list = []admin.SessionInfo{}
					}
					return writeJSON(cmd.OutOrStdout(), list)
				}
				if len(list) == 0 {
					fmt.Fprintf(cmd.ErrOrStderr(), "%s has no live sessions\n", args[0])
					return nil
				}
				tw := table(cmd.OutOrStdout())
				fmt.Fprintln(tw, "SESSION\tCREATED\tLAST USED\tCLIENT\tEXPIRES")
				for _, s := range list {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.ID, short(s.CreatedAt), short(s.LastUsed), s.ClientAddr, short(s.ExpiresAt))
				}
				return tw.Flush()
			})
		},
	}
}

func (a *app) newTokenRevokeCommand() *cobra.Command {
	var req admin.RevokeRequest
	c := &cobra.Command{
		Use:   "revoke [JTI|SESSION] | --user NAME --all",
		Short: "Revoke a session, an access token, or everything of a user",
		Long: `Revoke one session (an id from "token list", ses_…): its refresh tokens stop
working, and so do the access tokens its sign-in and refreshes issued (their
sid claim). Or revoke one access token by its jti ("token inspect" shows it):
it is refused until it would have expired. Or, with --user NAME --all, end
every token and session of the user at once (their token version changes).
Chat connections opened with a revoked token are closed (4003). An id that
starts with "-" (older versions issued some) goes after "--":
"chatctl token revoke -- -Xk2…".`,
		Example: `  chatctl token revoke ses_Xk2…
  chatctl token revoke 35O7VfmcxmvdUIwpkPmTCw
  chatctl token revoke --user alice --all`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				req.ID = args[0]
			}
			switch {
			case req.ID != "" && (req.User != "" || req.All):
				return errors.New("give either an id or --user NAME --all, not both")
			case req.ID == "" && (req.User == "" || !req.All):
				return errors.New("give a session id or jti, or --user NAME --all")
			}
			return a.withAdminFor(store.Write, func(adm admin.Admin) error {
				res, err := adm.Revoke(cmd.Context(), req)
				if err != nil {
					return err
				}
				if a.json() {
					return writeJSON(cmd.OutOrStdout(), res)
				}
				switch res.Kind {
				case "user":
					fmt.Fprintf(cmd.ErrOrStderr(), "revoked every token and session of %s\n", res.Username)
				case "session":
					fmt.Fprintf(cmd.ErrOrStderr(), "revoked session %s of %s\n", res.ID, res.Username)
				default:
					fmt.Fprintf(cmd.ErrOrStderr(), "revoked token %s\n", res.ID)
				}
				return nil
			})
		},
	}
	c.Flags().StringVar(&req.User, "user", "", "the user whose tokens to revoke (with --all)")
	c.Flags().BoolVar(&req.All, "all", false, "revoke every token and session of --user")
	return c
}

func (a *app) newRoomCommand() *cobra.Command {
	c := &cobra.Command{
		Use:     "room",
		Short:   "List, delete and manage private chat rooms",
		Example: "  chatctl room list\n  chatctl room delete general\n  chatctl room create board --private --member alice",
	}
	c.AddCommand(a.newRoomAccessCommands()...)
	c.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List rooms with their history and who is online",
		Long: `List every room with stored history: messages kept, the last message id, and,
when a server is running, the users and connections in it now.`,
		Example: "  chatctl room list\n  chatctl room list -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withAdminFor(store.Read, func(adm admin.Admin) error {
				rooms, err := adm.Rooms(cmd.Context())
				if err != nil {
					return err
				}
				if a.json() {
					if rooms == nil {
						rooms = []admin.RoomInfo{}
					}
					return writeJSON(cmd.OutOrStdout(), rooms)
				}
				if len(rooms) == 0 {
					fmt.Fprintln(cmd.ErrOrStderr(), "no rooms yet")
					return nil
				}
				tw := table(cmd.OutOrStdout())
				fmt.Fprintln(tw, "ROOM\tONLINE\tMESSAGES\tLAST ID\tCREATED")
				for _, r := range rooms {
					fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\n", r.Name, r.Online, r.Messages, r.LastID, short(r.CreatedAt))
				}
				return tw.Flush()
			})
		},
	}, &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a room and its history",
		Long: `Delete a room and every message in it; a private room goes whole, with its
member list (made again, the name starts as a public room). Members connected
to it get an error frame (not_found) and are removed from it.`,
		Example: "  chatctl room delete general",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withAdminFor(store.Write, func(adm admin.Admin) error {
				if err := adm.DeleteRoom(cmd.Context(), args[0]); err != nil {
					return err
				}
				if a.json() {
					return writeJSON(cmd.OutOrStdout(), map[string]any{"room": args[0], "deleted": true})
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "deleted room %s\n", args[0])
				return nil
			})
		},
	})
	return c
}
