package cmd

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/chatctl/chatctl/configs"
)

func (a *app) newConfigCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "config",
		Short: "Show or check the configuration",
		Long: `chatctl reads built-in defaults, then a YAML file (--config or CHATCTL_CONFIG),
then CHATCTL_* environment variables, then flags. "chatctl config show" prints
the result and where each value came from; the annotated defaults are in
configs/chatctl.yaml and printed by "chatctl config show --example".`,
		Example: "  chatctl config show\n  chatctl config check /etc/chatctl.yaml",
	}
	var example bool
	show := &cobra.Command{
		Use:   "show",
		Short: "Print the effective configuration and where each value came from",
		Long: `Print every key with its effective value and its source (default, file, env or
flag). Secrets are redacted.`,
		Example: "  chatctl config show\n  CHATCTL_TOKEN_TTL=1h chatctl config show -o json\n  chatctl config show --example > chatctl.yaml",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if example {
				_, err := cmd.OutOrStdout().Write(configs.DefaultYAML())
				return err
			}
			cfg, err := a.config()
			if err != nil {
				return err
			}
			entries := cfg.Entries()
			if a.json() {
				out := map[string]any{}
				for _, e := range entries {
					out[e.Key] = map[string]any{"value": e.Value, "source": e.Source}
				}
				return writeJSON(cmd.OutOrStdout(), out)
			}
			tw := table(cmd.OutOrStdout())
			fmt.Fprintln(tw, "KEY\tVALUE\tSOURCE")
			for _, e := range entries {
				fmt.Fprintf(tw, "%s\t%v\t%s\n", e.Key, e.Value, e.Source)
			}
			if cfg.File != "" {
				fmt.Fprintf(tw, "# file: %s\n", cfg.File)
			}
			return tw.Flush()
		},
	}
	show.Flags().BoolVar(&example, "example", false, "print the annotated default configuration file instead")
	check := &cobra.Command{
		Use:   "check [FILE]",
		Short: "Validate a configuration file without starting anything",
		Long: `Load FILE (or --config, or $CHATCTL_CONFIG) with the environment, and report
every unknown key and bad value by name, and a store, store folder or
token.secret_file that other users could read or change (with the chmod
that fixes it), as serve would. Exits 1 when anything is wrong.`,
		Example: "  chatctl config check chatctl.yaml\n  chatctl --config chatctl.yaml config check",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				a.configPath = args[0]
			}
			cfg, err := a.config()
			if err != nil {
				return err
			}
			// serve would refuse files open to other users; so does check.
			if err := cfg.CheckPermissions(); err != nil {
				return err
			}
			if a.json() {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"file": cfg.File, "valid": true})
			}
			if cfg.File == "" {
				fmt.Fprintln(cmd.OutOrStdout(), "ok: no config file; defaults and environment are valid")
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "ok: %s is valid\n", cfg.File)
			}
			return nil
		},
	}
	c.AddCommand(show, check)
	return c
}
