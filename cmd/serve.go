package cmd

import (
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/chatctl/chatctl/api"
	"github.com/chatctl/chatctl/configs"
)

func (a *app) newServeCommand() *cobra.Command {
	var listen string
	c := &cobra.Command{
		Use:   "serve",
		Short: "Run the chat server in the foreground",
		Long: `Run the HTTP and WebSocket server on the configured store. It needs no setup:
the signing key is generated in the store on first use, and an empty store
starts fine (add the first user with "chatctl user add NAME --role admin",
which works while the server runs).

While it runs, the other chatctl commands reach it through the Unix socket
"<db>.sock" beside the store. SIGINT or SIGTERM drain it: it stops accepting,
closes WebSockets with 1001, flushes the store and exits 0.`,
		Example: `  chatctl serve
  chatctl serve --listen 0.0.0.0:8080 --db /var/lib/chatctl/chatctl.db
  CHATCTL_LOG_FORMAT=json chatctl serve`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.configWith(map[string]string{"listen": listen})
			if err != nil {
				return err
			}
			logs := api.NewLogWriter(cmd.ErrOrStderr())
			defer logs.Close()
			return api.Serve(cmd.Context(), cfg, newLogger(logs, cfg), api.ServeOptions{Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr()})
		},
	}
	c.Flags().StringVar(&listen, "listen", "", "address to listen on (default from config: 127.0.0.1:8000)")
	return c
}

// newLogger builds the slog logger log.format and log.level ask for.
func newLogger(w io.Writer, cfg *configs.Config) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
