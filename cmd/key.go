package cmd

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/chatctl/chatctl/admin"
	"github.com/chatctl/chatctl/store"
)

func (a *app) newKeyCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "key",
		Short: "List, rotate and retire the token signing keys",
		Long: `Tokens are signed with a random 256-bit HS256 key that the store generates on
first use. After "key rotate" new tokens use a new key, and the old one keeps
verifying until the longest-lived token it signed has expired; "key retire"
stops it at once (a compromised key). CHATCTL_JWT_SECRET or token.secret_file
replace the store's keys with one secret of your own.`,
		Example: "  chatctl key list\n  chatctl key rotate\n  chatctl key retire 1a2b3c4d",
	}
	c.AddCommand(&cobra.Command{
		Use:     "list",
		Short:   "List the signing keys and their state",
		Example: "  chatctl key list\n  chatctl key list -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withAdminFor(store.Read, func(adm admin.Admin) error {
				keys, err := adm.Keys(cmd.Context())
				if err != nil {
					return err
				}
				if a.json() {
					return writeJSON(cmd.OutOrStdout(), keys)
				}
				tw := table(cmd.OutOrStdout())
				fmt.Fprintln(tw, "KID\tSTATUS\tSOURCE\tCREATED\tVERIFIES UNTIL")
				for _, k := range keys {
					until := short(k.Expires)
					switch k.State {
					case admin.KeyActive:
						until = "-"
					case admin.KeyRetired:
						until = "retired " + until
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.Kid, k.State, k.Source, short(k.CreatedAt), until)
				}
				return tw.Flush()
			})
		},
	}, &cobra.Command{
		Use:   "rotate",
		Short: "Sign new tokens with a new key",
		Long: `Create a new active signing key. Tokens signed by the old key stay valid until
they expire; then the old key is dropped.`,
		Example: "  chatctl key rotate",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withAdmin(func(adm admin.Admin) error {
				k, err := adm.RotateKey(cmd.Context())
				if err != nil {
					return err
				}
				if a.json() {
					return writeJSON(cmd.OutOrStdout(), k)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "new signing key %s is active; older keys verify until their tokens expire\n", k.Kid)
				return nil
			})
		},
	}, a.newKeyRetireCommand())
	return c
}

func (a *app) newKeyRetireCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "retire KID",
		Short: "Stop a rotated-out key verifying now",
		Long: `Stop the key KID verifying at once, before its tokens expire: for a key that
leaked. Every token it signed is refused from now on (401), and the chat
connections opened with one are closed (4003). The key that signs new tokens
cannot be retired: run "key rotate" first, so that another key signs, then
retire the old one. "key list" shows the key as retired until its tokens
would have expired.`,
		Example: `  chatctl key rotate
  chatctl key retire 1a2b3c4d
  chatctl key retire 1a2b3c4d -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withAdminFor(store.Write, func(adm admin.Admin) error {
				k, err := adm.RetireKey(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if a.json() {
					return writeJSON(cmd.OutOrStdout(), k)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "key %s is retired: tokens it signed no longer verify\n", k.Kid)
				return nil
			})
		},
	}
}
