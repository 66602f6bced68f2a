package cmd

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/chatctl/chatctl/admin"
)

func (a *app) newKeyCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "key",
		Short: "List and rotate the token signing keys",
		Long: `Tokens are signed with a random 256-bit HS256 key that the store generates on
first use. After "key rotate" new tokens use a new key, and the old one keeps
verifying until the longest-lived token it signed has expired. CHATCTL_JWT_SECRET
or token.secret_file replace the store's keys with one secret of your own.`,
		Example: "  chatctl key list\n  chatctl key rotate",
	}
	c.AddCommand(&cobra.Command{
		Use:     "list",
		Short:   "List the signing keys that still verify",
		Example: "  chatctl key list\n  chatctl key list -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withAdmin(func(adm admin.Admin) error {
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
					st, until := "retired", short(k.Expires)
					if k.Active {
						st, until = "active", "-"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.Kid, st, k.Source, short(k.CreatedAt), until)
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
	})
	return c
}
