package cmd

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/chatctl/chatctl/auth"
	"github.com/chatctl/chatctl/configs"
)

func (a *app) newHashPasswordCommand() *cobra.Command {
	var cost int
	var fromStdin bool
	c := &cobra.Command{
		Use:   "hash-password",
		Short: "Print the bcrypt hash of a password",
		Long: `Read a password (prompted twice on a terminal, else the first line of stdin)
and print its bcrypt hash, for "user add --hash" or other tools. Nothing is
stored.`,
		Example: `  chatctl hash-password
  printf '%s\n' "$PASSWORD" | chatctl hash-password --cost 10`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("cost") {
				cost = cfg.Password.BcryptCost
			}
			if cost < configs.MinBcryptCost || cost > configs.MaxBcryptCost {
				return fmt.Errorf("--cost must be between %d and %d, got %d", configs.MinBcryptCost, configs.MaxBcryptCost, cost)
			}
			// Unlike user add, a pipe needs no flag here: nothing is stored,
			// so reading stdin cannot surprise anyone.
			pw, err := a.readPassword(cmd.ErrOrStderr(), fromStdin || !a.terminal.IsTerminal(), "Password: ")
			if err != nil {
				return err
			}
			h, err := auth.HashPassword(pw, cfg.Password.MinLength, cost)
			if err != nil {
				return err
			}
			if a.json() {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"hash": h, "cost": cost})
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), h)
			return err
		},
	}
	c.Flags().IntVar(&cost, "cost", 0, "bcrypt cost, 10..14 (default password.bcrypt_cost, 12)")
	c.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the password from stdin (the default when stdin is not a terminal)")
	return c
}
