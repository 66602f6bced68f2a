// Package cmd holds chatctl's Cobra commands. Commands only parse flags,
// call one function of the other packages and print the result; the rules
// live in packages admin, auth, configs and store.
package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/chatctl/chatctl/admin"
	"github.com/chatctl/chatctl/buildinfo"
	"github.com/chatctl/chatctl/configs"
	"github.com/chatctl/chatctl/store"
)

// app carries what every command shares: I/O, the environment and the
// global flags. One app serves one invocation.
type app struct {
	ctx    context.Context // done on SIGINT or SIGTERM
	getenv func(string) string
	stdin  io.Reader
	stderr io.Writer // for notes that are not the command's output

	configPath string
	dbPath     string
	storeURL   string
	output     string

	cfg *configs.Config // loaded on first use by config()

	// terminal reads a password without echo when stdin is a terminal.
	// Tests replace it.
	terminal terminal
}

// Main runs chatctl with args and returns the process exit code: 0 on
// success, 1 on failure after printing one "error: …" line to stderr, 130
// when SIGINT or SIGTERM interrupted a password prompt.
func Main(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{ctx: ctx, getenv: getenv, stdin: stdin, stderr: stderr, terminal: osTerminal{stdin}}
	root := a.newRootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if cmd, err := root.ExecuteContextC(ctx); err != nil {
		msg := oneLine(err)
		var ae argsError
		if errors.As(err, &ae) {
			msg = fmt.Sprintf("%s: %s (see '%s --help')", cmd.CommandPath(), msg, cmd.CommandPath())
		}
		fmt.Fprintln(stderr, "error: "+msg)
		if errors.Is(err, ErrInterrupted) {
			return ExitInterrupted
		}
		return 1
	}
	return 0
}

// ExitInterrupted is the exit code after SIGINT or SIGTERM stopped a
// command that was waiting for input (128 + SIGINT, as shells report
// Ctrl-C).
const ExitInterrupted = 130

// argsError marks wrong argument counts, so Main can name the command.
type argsError struct{ error }

// checkArgs wraps every command's argument validator so its errors match
// errArgs. Cobra's own messages ("accepts 1 arg(s), received 2") do not
// say which command complained.
func checkArgs(c *cobra.Command) {
	if v := c.Args; v != nil {
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := v(cmd, args); err != nil {
				return argsError{err}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		checkArgs(sub)
	}
}

// oneLine keeps the error on one line, as SPEC §4 promises scripts.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}

func (a *app) newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "chatctl",
		Short: "Admin CLI and server of a real-time chat service",
		Long: `chatctl is one binary for a real-time chat service: "chatctl serve" runs the
HTTP and WebSocket server, and the other commands administer users, tokens
and keys in the same embedded store (chatctl.db), whether or not the server
is running.`,
		Example: `  chatctl user add alice --role admin      # prompts for the password twice
  chatctl serve                            # listens on 127.0.0.1:8000
  chatctl token issue alice                # prints an access token`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.configPath, "config", "", "config file (YAML; default $CHATCTL_CONFIG, else none)")
	pf.StringVar(&a.dbPath, "db", "", "store file (default from config: chatctl.db)")
	pf.StringVar(&a.storeURL, "store", "", "PostgreSQL store, postgres://USER@HOST:PORT/DB (default from config: none, the file at --db)")
	pf.StringVarP(&a.output, "output", "o", "text", "output format: text or json")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if a.output != "text" && a.output != "json" {
			return fmt.Errorf("--output must be text or json, got %q", a.output)
		}
		// An empty --db (say, from an unset shell variable) must not
		// quietly fall back to ./chatctl.db.
		if f := cmd.Flags().Lookup("db"); f != nil && f.Changed && strings.TrimSpace(a.dbPath) == "" {
			return errors.New("--db must not be empty")
		}
		return nil
	}
	// Flag errors get the command's name, so the one-line error says
	// where to look.
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%s: %w (see '%s --help')", cmd.CommandPath(), err, cmd.CommandPath())
	})
	root.AddCommand(
		a.newUserCommand(),
		a.newHashPasswordCommand(),
		a.newTokenCommand(),
		a.newKeyCommand(),
		a.newConfigCommand(),
		a.newServeCommand(),
		a.newRoomCommand(),
		a.newAccessCommand(),
		a.newBenchCommand(),
		a.newBackupCommand(),
		a.newRestoreCommand(),
		a.newStoreCommand(),
		a.newAuditCommand(),
		a.newVersionCommand(),
	)
	// --version prints the one-line form of "chatctl version".
	root.Version = versionLine(buildinfo.Get())
	root.SetVersionTemplate("{{.Version}}\n")
	// A command that only groups others would print its help and exit 0
	// on a mistyped subcommand; make that an error as SPEC §4 wants.
	for _, c := range root.Commands() {
		if c.HasSubCommands() && c.Run == nil && c.RunE == nil {
			c.Args = cobra.ArbitraryArgs
			c.RunE = groupRunE
		}
	}
	checkArgs(root)
	// Our own completion command, so it has examples like every other.
	root.CompletionOptions.DisableDefaultCmd = true
	root.AddCommand(newCompletionCommand(root))
	return root
}

func newCompletionCommand(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish|powershell",
		Short: "Print a shell completion script",
		Long:  "Print the completion script for your shell; load it from your shell's startup file.",
		Example: `  source <(chatctl completion bash)
  chatctl completion zsh > "${fpath[1]}/_chatctl"
  chatctl completion fish > ~/.config/fish/completions/chatctl.fish`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"bash", "zsh", "fish", "powershell"},
		RunE: func(cmd *cobra.Command, args []string) error {
			w := cmd.OutOrStdout()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(w, true)
			case "zsh":
				return root.GenZshCompletion(w)
			case "fish":
				return root.GenFishCompletion(w, true)
			case "powershell":
				return root.GenPowerShellCompletionWithDesc(w)
			}
			return fmt.Errorf("unknown shell %q: want bash, zsh, fish or powershell", args[0])
		},
	}
}

// groupRunE runs a command that only groups subcommands: help when called
// alone, an error for an unknown subcommand.
func groupRunE(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unknown command %q for %q (see '%s --help')", args[0], cmd.CommandPath(), cmd.CommandPath())
	}
	return cmd.Help()
}

// config loads, overrides with flags and validates the configuration once.
func (a *app) config() (*configs.Config, error) { return a.configWith(nil) }

// configWith is config with more flag values (key -> value; empty values
// are flags that were not given).
func (a *app) configWith(flags map[string]string) (*configs.Config, error) {
	if a.cfg != nil {
		return a.cfg, nil
	}
	cfg, err := a.loadConfig(flags)
	if err != nil {
		return nil, err
	}
	a.cfg = cfg
	return cfg, nil
}

// loadConfig reads the configuration afresh: the file, the environment
// and the flags (as configWith), validated. serve calls it again on SIGHUP.
func (a *app) loadConfig(flags map[string]string) (*configs.Config, error) {
	cfg, err := configs.Load(a.configPath, a.getenv)
	if err != nil {
		return nil, err
	}
	all := map[string]string{"db": a.dbPath, "store": a.storeURL}
	for key, v := range flags {
		all[key] = v
	}
	for key, v := range all {
		if v == "" {
			continue
		}
		if err := cfg.Set(key, v, configs.SourceFlag); err != nil {
			return nil, err
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	return cfg, nil
}

// admin returns the admin operations on the configured store: directly, or
// through the running server's socket when `serve` holds the store. It may
// create a missing store (user add, key rotate).
func (a *app) admin() (admin.Admin, error) { return a.adminFor(store.Create) }

// adminFor is admin for a command that needs access of the store:
// store.Read (list, show, inspect) and store.Write (change what exists)
// never create a store, and a missing one is an error that says how to
// make one; store.Read works on a read-only file.
func (a *app) adminFor(access store.Access) (admin.Admin, error) {
	cfg, err := a.config()
	if err != nil {
		return nil, err
	}
	adm, err := admin.ConnectWith(cfg, access)
	if errors.Is(err, store.ErrNoStore) {
		db := ""
		if cfg.Source("db") == configs.SourceFlag {
			db = "--db " + shellQuote(cfg.DB) + " "
		}
		return nil, fmt.Errorf("%w; create one with `chatctl %suser add NAME --role admin` or `chatctl %sserve`", err, db, db)
	}
	if err != nil {
		return nil, err
	}
	if s, ok := adm.(*admin.Service); ok && s.DB().Created() {
		a.noteCreated(s.DB().Path())
	}
	return adm, nil
}

// noteCreated says once, on stderr, that a new store was made, so a
// mistyped --db does not go unnoticed.
func (a *app) noteCreated(path string) {
	if configs.IsPostgres(path) {
		fmt.Fprintf(a.stderr, "created the chatctl schema in %s\n", path)
		return
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	fmt.Fprintf(a.stderr, "created new store %s\n", path)
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:+@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// withAdmin runs fn with an Admin that may create the store, and closes
// it afterwards.
func (a *app) withAdmin(fn func(admin.Admin) error) error {
	return a.withAdminFor(store.Create, fn)
}

// withAdminFor is withAdmin with the access the command needs.
func (a *app) withAdminFor(access store.Access, fn func(admin.Admin) error) error {
	adm, err := a.adminFor(access)
	if err != nil {
		return err
	}
	return errors.Join(fn(adm), adm.Close())
}

// json reports whether -o json was given.
func (a *app) json() bool { return a.output == "json" }
