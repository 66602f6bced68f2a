package cmd

import (
	"os"
	"os/signal"

	"github.com/spf13/cobra"

	"github.com/chatctl/chatctl/api"
	"github.com/chatctl/chatctl/configs"
)

func (a *app) newServeCommand() *cobra.Command {
	var listen, broker string
	c := &cobra.Command{
		Use:   "serve",
		Short: "Run the chat server in the foreground",
		Long: `Run the HTTP and WebSocket server on the configured store. It needs no setup:
the signing key is generated in the store on first use, and an empty store
starts fine (add the first user with "chatctl user add NAME --role admin",
which works while the server runs).

While it runs, the other chatctl commands reach it through the Unix socket
"<db>.sock" beside the store. SIGINT or SIGTERM drain it: it stops accepting,
closes WebSockets with 1001, flushes the store and exits 0.

SIGHUP (not on Windows) re-reads the config file and the environment as
start-up did and applies, without dropping a connection, what can change
live: log.level, log.format, login.* rate limits, ws.send_rate,
ws.send_burst, cors.origins and ws.allowed_origins. It logs each change
(key: old → new) and names changed keys that need a restart (listen, db,
…). A file that does not validate changes nothing: the error is logged and
the running configuration stays.

With a PostgreSQL store (--store), several servers can run as one service
behind a load balancer: --broker nats://HOST:PORT (config key broker, env
CHATCTL_BROKER) joins them through NATS. A broker with the bbolt file is
refused.`,
		Example: `  chatctl serve
  chatctl serve --listen 0.0.0.0:8080 --db /var/lib/chatctl/chatctl.db
  CHATCTL_LOG_FORMAT=json chatctl serve
  chatctl serve --store postgres://chatctl@db1/chatctl --broker nats://n1:4222
  kill -HUP "$(pidof chatctl)"             # reload chatctl.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			flags := map[string]string{"listen": listen, "broker": broker}
			cfg, err := a.configWith(flags)
			if err != nil {
				return err
			}
			logs := api.NewLogWriter(cmd.ErrOrStderr())
			defer logs.Close()
			logging := newLogging(logs, cfg)

			hup := make(chan os.Signal, 1)
			notifyReload(hup)
			defer signal.Stop(hup)
			reload := make(chan struct{}, 1)
			stop := make(chan struct{})
			defer close(stop)
			go forwardReloads(hup, reload, stop)

			return api.Serve(cmd.Context(), cfg, logging.Logger(), api.ServeOptions{
				Stdout:     cmd.OutOrStdout(),
				Stderr:     cmd.ErrOrStderr(),
				Reload:     reload,
				LoadConfig: func() (*configs.Config, error) { return a.loadConfig(flags) },
				Logging:    logging,
			})
		},
	}
	c.Flags().StringVar(&listen, "listen", "", "address to listen on (default from config: 127.0.0.1:8000)")
	c.Flags().StringVar(&broker, "broker", "", "NATS URLs joining this node to the others on the same PostgreSQL store, nats://HOST:PORT[,…] (default from config: none, one node)")
	return c
}

// forwardReloads turns reload signals into reload requests until stop is
// closed. Signals that arrive while a reload is pending are merged into it.
func forwardReloads(sig <-chan os.Signal, reload chan<- struct{}, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-sig:
			select {
			case reload <- struct{}{}:
			default: // one is pending already; it will read the newest file
			}
		}
	}
}

// newLogging builds the logger log.format and log.level ask for; SIGHUP
// can change both later.
func newLogging(w *api.LogWriter, cfg *configs.Config) *api.Logging {
	return api.NewLogging(w, cfg.Log.Format, cfg.Log.Level)
}
