package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/chatctl/chatctl/admin"
	"github.com/chatctl/chatctl/auth"
	"github.com/chatctl/chatctl/bench"
	"github.com/chatctl/chatctl/store"
)

// benchFlags are the flags every bench subcommand shares.
type benchFlags struct {
	url, wsURL, origin string
	token, user        string
	passwordStdin      bool
}

func (a *app) newBenchCommand() *cobra.Command {
	var f benchFlags
	c := &cobra.Command{
		Use:   "bench",
		Short: "Load-test a running chatctl server",
		Long: `Measure a running server the way nats bench or redis-benchmark do:
  http    GET /users/me at C connections: requests/s and latency percentiles
  login   POST /token at C connections: logins/s against bcrypt's limit
  conns   open and hold N WebSocket connections: connect rate, memory per connection
  fanout  members in rooms, some publishing at a rate: deliveries/s, end-to-end
          latency, lost and out-of-order messages; --step finds the highest rate

Users and tokens come from --token or --user, or are created as bench-NNNN
users through the admin interface of the server on the configured store.
Progress goes to stderr; the summary to stdout (-o json for scripts). Ctrl-C
stops early and still prints the summary so far.`,
		Example: `  chatctl bench http -c 64 -d 10s
  chatctl bench login -c 4
  chatctl bench conns -n 5000 --server-pid $(pgrep -f 'chatctl serve')
  chatctl bench fanout --members 1000 --rate 140 --step 20 --max-p99 50ms`,
	}
	pf := c.PersistentFlags()
	pf.StringVar(&f.url, "url", "", "server base URL; for fanout, a comma list of the nodes of a cluster (default http:// + the configured listen address)")
	pf.StringVar(&f.wsURL, "ws-url", "", "WebSocket base URL, one per --url (default derived from --url)")
	pf.StringVar(&f.origin, "origin", "", "Origin header for WebSocket dials")
	pf.StringVar(&f.token, "token", "", "use this access token instead of creating bench users")
	pf.StringVar(&f.user, "user", "", "log in as this user (password from --password-stdin or a prompt)")
	pf.BoolVar(&f.passwordStdin, "password-stdin", false, "read --user's password from stdin")
	c.AddCommand(a.newBenchHTTPCommand(&f), a.newBenchLoginCommand(&f), a.newBenchConnsCommand(&f), a.newBenchFanoutCommand(&f))
	return c
}

// target resolves the server under test, one node: a comma list in --url
// or --ws-url is refused, since only bench fanout spreads over nodes.
func (a *app) target(f *benchFlags, name string) (bench.Target, error) {
	if strings.Contains(f.url, ",") || strings.Contains(f.wsURL, ",") {
		return bench.Target{}, fmt.Errorf("bench %s takes one --url: only bench fanout spreads its load over several nodes", name)
	}
	return a.oneTarget(f)
}

// targets resolves the nodes bench fanout spreads over: one, as target,
// or each of a comma list in --url (and --ws-url, one per node).
func (a *app) targets(f *benchFlags) ([]bench.Target, error) {
	if !strings.Contains(f.url, ",") && !strings.Contains(f.wsURL, ",") {
		t, err := a.oneTarget(f)
		return []bench.Target{t}, err
	}
	if f.url == "" {
		return nil, errors.New("--ws-url lists several nodes: list their --url too, in the same order")
	}
	return bench.ParseTargets(f.url, f.wsURL, f.origin)
}

// oneTarget is the Target the flags name (--url defaulting to the
// configured listen address).
func (a *app) oneTarget(f *benchFlags) (bench.Target, error) {
	t := bench.Target{URL: f.url, WSURL: f.wsURL, Origin: f.origin}
	if t.URL == "" {
		cfg, err := a.config()
		if err != nil {
			return t, err
		}
		t.URL = "http://" + cfg.Listen
	}
	return t, nil
}

// provisioner gives the bench its users: the flags' user or token, or
// bench users made through the admin interface. The returned close
// function releases the admin connection.
func (a *app) provisioner(cmd *cobra.Command, f *benchFlags, t bench.Target, ttl time.Duration) (bench.Provisioner, func(), error) {
	switch {
	case f.token != "":
		return &bench.StaticUsers{URL: t.URL, Creds: []bench.Cred{{Token: f.token}}}, func() {}, nil
	case f.user != "":
		pw, err := a.readPassword(cmd.ErrOrStderr(), f.passwordStdin, "Password for "+f.user+": ")
		if err != nil {
			return nil, nil, err
		}
		return &bench.StaticUsers{URL: t.URL, Creds: []bench.Cred{{Username: f.user, Password: pw}}}, func() {}, nil
	}
	adm, err := a.adminFor(store.Write)
	if err != nil {
		return nil, nil, fmt.Errorf("%w (or pass --token or --user)", err)
	}
	return &adminUsers{adm: adm, ttl: ttl}, func() { adm.Close() }, nil
}

// adminUsers provisions bench-NNNN users through the admin interface and
// issues their tokens directly: they never log in with a password.
type adminUsers struct {
	adm admin.Admin
	ttl time.Duration
}

func (p *adminUsers) Users(ctx context.Context, n int) ([]bench.Cred, error) {
	// One throwaway hash for all: nobody knows its password, and the
	// cheapest cost keeps creating a thousand users fast.
	hash, err := auth.HashPassword(auth.RandomID(24), 1, 4)
	if err != nil {
		return nil, err
	}
	out := make([]bench.Cred, n)
	for i := range out {
		name := fmt.Sprintf("bench-%04d", i+1)
		if _, err := p.adm.AddUser(ctx, admin.AddUserRequest{Name: name, Hash: hash, IgnoreExists: true}); err != nil {
			return nil, fmt.Errorf("create bench user %s: %w", name, err)
		}
		out[i] = bench.Cred{Username: name}
	}
	return out, nil
}

func (p *adminUsers) Token(ctx context.Context, c bench.Cred) (string, error) {
	tok, err := p.adm.IssueToken(ctx, c.Username, p.ttl)
	return tok.AccessToken, err
}

// report prints a result: JSON with -o json, else its text summary.
func (a *app) report(w io.Writer, v interface{ WriteText(io.Writer) }) error {
	if a.json() {
		return writeJSON(w, v)
	}
	v.WriteText(w)
	return nil
}

func (a *app) newBenchHTTPCommand(f *benchFlags) *cobra.Command {
	var o bench.HTTPOptions
	c := &cobra.Command{
		Use:     "http",
		Short:   "GET /users/me with a valid token at C connections",
		Example: "  chatctl bench http -c 64 -d 10s\n  chatctl bench http --rate 500 -c 8   # latency at a fixed load\n  chatctl bench http --token \"$TOKEN\" --url http://chat.example:8000 -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := a.target(f, "http")
			if err != nil {
				return err
			}
			p, done, err := a.provisioner(cmd, f, t, o.Duration+10*time.Minute)
			if err != nil {
				return err
			}
			defer done()
			users, err := p.Users(cmd.Context(), 1)
			if err != nil {
				return err
			}
			if o.Token, err = p.Token(cmd.Context(), users[0]); err != nil {
				return err
			}
			o.Target, o.Progress = t, cmd.ErrOrStderr()
			r, err := bench.RunHTTP(cmd.Context(), o)
			if err != nil {
				return err
			}
			return a.report(cmd.OutOrStdout(), r)
		},
	}
	c.Flags().IntVarP(&o.Concurrency, "concurrency", "c", 64, "concurrent connections")
	c.Flags().DurationVarP(&o.Duration, "duration", "d", 10*time.Second, "measured time")
	c.Flags().DurationVar(&o.Timeout, "timeout", 10*time.Second, "per-request timeout")
	c.Flags().Float64Var(&o.Rate, "rate", 0, "requests per second in all (open loop); 0: as fast as the connections go")
	return c
}

func (a *app) newBenchLoginCommand(f *benchFlags) *cobra.Command {
	var o bench.LoginOptions
	c := &cobra.Command{
		Use:   "login",
		Short: "POST /token with a password at C connections",
		Long: `Log in over and over as one user: logins/s and latency percentiles. Without
--user it prepares the user bench-login with a fresh random password (at the
server's bcrypt cost). Compare with the bcrypt limit: cores / one hash's time.`,
		Example: "  chatctl bench login -c 4 -d 10s",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := a.target(f, "login")
			if err != nil {
				return err
			}
			o.Username = f.user
			switch {
			case f.token != "":
				return errors.New("bench login needs a password: use --user, or neither flag")
			case f.user != "":
				if o.Password, err = a.readPassword(cmd.ErrOrStderr(), f.passwordStdin, "Password for "+f.user+": "); err != nil {
					return err
				}
			default:
				o.Username, o.Password = "bench-login", auth.RandomID(18)
				err := a.withAdminFor(store.Write, func(adm admin.Admin) error {
					if _, err := adm.AddUser(cmd.Context(), admin.AddUserRequest{Name: o.Username, Password: o.Password, IgnoreExists: true}); err != nil {
						return err
					}
					_, err := adm.SetPassword(cmd.Context(), o.Username, o.Password)
					return err
				})
				if err != nil {
					return fmt.Errorf("prepare bench-login: %w (or pass --user)", err)
				}
			}
			o.Target, o.Progress = t, cmd.ErrOrStderr()
			r, err := bench.RunLogin(cmd.Context(), o)
			if err != nil {
				return err
			}
			return a.report(cmd.OutOrStdout(), r)
		},
	}
	c.Flags().IntVarP(&o.Concurrency, "concurrency", "c", 8, "concurrent connections")
	c.Flags().DurationVarP(&o.Duration, "duration", "d", 10*time.Second, "measured time")
	c.Flags().DurationVar(&o.Timeout, "timeout", 30*time.Second, "per-request timeout")
	return c
}

func (a *app) newBenchConnsCommand(f *benchFlags) *cobra.Command {
	var o bench.ConnsOptions
	c := &cobra.Command{
		Use:   "conns",
		Short: "Open and hold N authenticated WebSocket connections",
		Long: `Open N connections to /ws at --rate per second and hold them: connect rate,
failures by cause, and with --server-pid the server's resident memory per
connection. One process holds at most its open-file limit of connections.`,
		Example: "  chatctl bench conns -n 5000 --rate 1000 --server-pid $(pgrep -f 'chatctl serve')",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := a.target(f, "conns")
			if err != nil {
				return err
			}
			p, done, err := a.provisioner(cmd, f, t, o.Hold+time.Hour)
			if err != nil {
				return err
			}
			defer done()
			o.Target, o.Creds, o.Progress = t, p, cmd.ErrOrStderr()
			r, err := bench.RunConns(cmd.Context(), o)
			if err != nil {
				return err
			}
			return a.report(cmd.OutOrStdout(), r)
		},
	}
	c.Flags().IntVarP(&o.N, "connections", "n", 1000, "connections to open")
	c.Flags().Float64Var(&o.Rate, "rate", 500, "connections opened per second")
	c.Flags().DurationVarP(&o.Hold, "duration", "d", 10*time.Second, "how long to hold them open")
	c.Flags().IntVar(&o.ServerPID, "server-pid", 0, "PID of the server, to report its memory per connection")
	c.Flags().IntVar(&o.MaxConnsPerUser, "max-conns-per-user", bench.DefaultMaxConnsPerUser, "the server's ws.max_conns_per_user")
	return c
}

func (a *app) newBenchFanoutCommand(f *benchFlags) *cobra.Command {
	var o bench.FanoutOptions
	var step, stepMax float64
	var maxP99 time.Duration
	var pids string
	c := &cobra.Command{
		Use:   "fanout",
		Short: "Members in rooms, some publishing at a rate: delivery, latency, loss",
		Long: `Join --members connections to --rooms rooms and publish --rate messages per
second in total for --duration from --publishers of them (as in any chat, the
senders are members and receive the room's messages too): delivered
messages/s, end-to-end latency percentiles, and lost and out-of-order
messages (from the per-room ids). A round fails (held: false, every reason
in "failures") when a message is lost, unacked, refused or out of order,
when members failed to connect or were closed by the server (in the
warm-up too), or when nothing was delivered. With --step the rate rises by
that much per round until one fails or p99 exceeds --max-p99; the highest
rate that held is reported. --raw speaks the gorilla/websocket chat
example's protocol, to compare both in one run.

Several nodes: --url URL1,URL2,... names the nodes of one cluster (one
store, one broker; --ws-url, when given, lists one WebSocket URL per node in
the same order). The members are spread round-robin over the nodes in every
room, each room starting one node further: member k of room r is on node
(k + r) mod N. So every room has members on every node once it has N
members, and the publishers (a room's first members) spread the same way.
Bench users are created and given tokens through the store, as for one
node; with --user the login goes to the first node. The nodes share the
store, so those tokens work on every node.
Every node is checked first; one that does not answer fails the run with
its URL. The report adds each node's members, publishers, deliveries and
latency, and the latency of deliveries from a publisher on another node
apart from those on the same node. --server-pid PID,... adds the CPU time
those processes (the nodes, the broker) used in each round and per acked
message (from /proc/PID/stat).`,
		Example: `  chatctl bench fanout --members 1000 --rate 140 -d 10s
  chatctl bench fanout --members 1000 --rate 100 --step 20 --max-p99 50ms
  chatctl bench fanout --raw --url http://127.0.0.1:8080 --members 1000 --rate 140
  chatctl bench fanout --url http://127.0.0.1:8001,http://127.0.0.1:8002 --members 1000 --rate 500 \
    --server-pid $(pgrep -d, -f 'chatctl serve')`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			nodes, err := a.targets(f)
			if err != nil {
				return err
			}
			t := nodes[0]
			if len(nodes) > 1 {
				if o.Raw {
					return errors.New("--raw takes one --url: the gorilla chat example has no cluster to spread over")
				}
				o.Nodes = nodes
			}
			if o.ServerPIDs, err = parsePIDs(pids); err != nil {
				return err
			}
			if !o.Raw {
				p, done, err := a.provisioner(cmd, f, t, 2*time.Hour)
				if err != nil {
					return err
				}
				defer done()
				o.Creds = p
			}
			if step > 0 {
				o.Step = &bench.StepOptions{Start: o.Rate, Step: step, Max: stepMax, MaxP99: maxP99}
			}
			o.Target, o.Progress = t, cmd.ErrOrStderr()
			r, err := bench.RunFanout(cmd.Context(), o)
			if err != nil {
				return err
			}
			return a.report(cmd.OutOrStdout(), r)
		},
	}
	fl := c.Flags()
	fl.IntVar(&o.Members, "members", 100, "receiving connections, spread over the rooms")
	fl.IntVar(&o.Rooms, "rooms", 1, "rooms")
	fl.IntVar(&o.Publishers, "publishers", 0, "members that also send (0: enough for --rate within the send limit, a multiple of --rooms)")
	fl.Float64Var(&o.Rate, "rate", 100, "messages per second, all rooms together")
	fl.DurationVarP(&o.Duration, "duration", "d", 10*time.Second, "publishing time per round")
	fl.DurationVar(&o.Drain, "drain", 2*time.Second, "grace for late deliveries after a round")
	fl.DurationVar(&o.Warmup, "warmup", 2*time.Second, "unmeasured publishing at --rate before the first round (0: none)")
	fl.IntVar(&o.MessageSize, "size", 0, "pad message texts to this many bytes")
	fl.Float64Var(&o.SendLimit, "send-limit", 20, "the server's ws.send_rate")
	fl.IntVar(&o.MaxConnsPerUser, "max-conns-per-user", bench.DefaultMaxConnsPerUser, "the server's ws.max_conns_per_user")
	fl.BoolVar(&o.Raw, "raw", false, "gorilla/websocket chat example protocol (no auth, no rooms)")
	fl.Float64Var(&step, "step", 0, "raise the rate by this much per round until it fails")
	fl.Float64Var(&stepMax, "step-max", 0, "highest rate to try (default rate + 19 steps)")
	fl.DurationVar(&maxP99, "max-p99", 50*time.Millisecond, "p99 bound of a round that holds (with --step)")
	fl.Float64Var(&o.ConnectRate, "connect-rate", 500, "connections opened per second during setup")
	fl.StringVar(&pids, "server-pid", "", "PID[,PID...] of the server's processes (nodes, broker): report their CPU time per round")
	return c
}

// parsePIDs reads --server-pid's comma list of process ids.
func parsePIDs(list string) ([]int, error) {
	if list == "" {
		return nil, nil
	}
	var out []int
	for _, p := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("--server-pid %q: %q is not a process id", list, p)
		}
		out = append(out, n)
	}
	return out, nil
}
