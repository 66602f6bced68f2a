// Package bench is the load generator behind `chatctl bench`: it sizes a
// running chatctl server the way `nats bench` or `redis-benchmark` size
// theirs, and can measure gorilla/websocket's chat example with the same
// tool for comparison.
//
// # Basics
//
// Each scenario has an Options struct, a Run function taking a context and
// a Result struct with JSON tags and a WriteText method:
//
//	RunHTTP    GET /users/me with a bearer token at C keep-alive connections
//	RunLogin   POST /token (password grant) at C connections; 429s apart
//	RunConns   open N WebSocket connections at a rate, hold them, and
//	           report failures by cause and the server's RSS per connection
//	RunFanout  M members in R rooms, P of them publishing at a total
//	           rate; delivery rate, end-to-end latency, loss and order;
//	           Step searches for the highest rate that holds; Raw speaks
//	           the gorilla example; Nodes spreads the members over the
//	           nodes of a cluster (nodeOf) and reports each node's share
//
// Cancelling the context (Ctrl-C in the CLI) ends a run early; the Run
// functions then still return the result so far with Interrupted set. An
// error is returned only when a run cannot start: a bad target (see Check
// and PreflightError), too few users, or impossible options.
//
// Progress lines go to Options.Progress once per ProgressInterval (1 s)
// when it is non-nil; the CLI passes stderr so that `-o json` stays clean.
//
// Latencies are kept in a log-linear Histogram (fixed memory, ±0.4%), one
// per worker or a SharedHistogram for thousands of connections, never in a
// slice of samples. Rates are counts over the measured window (Rate).
//
// The fanout connections speak WebSocket through their own small client
// end (wsconn.go), not gorilla's Conn: one fanout run reads up to a million
// frames a second on one core, and the load generator's cost per frame
// decides what it can measure. Each read takes all the socket holds into a
// 64 KiB buffer and the frames are handed out in place; message frames in
// chatctl's layout are read by a fast path (scanMessage) and anything else
// by scanFrame, a one-pass scan of the top-level fields.
//
// Users come through a Provisioner. StaticUsers serves the CLI's --token or
// --user/--password flags; the CLI's admin-API provisioner creates as many
// bench users as a run needs (at most MaxConnsPerUser connections each).
//
// # Caveats
//
// The load generator shares the machine with the server when both run on
// loopback: its numbers are then a floor, not the server's ceiling.
//
// One process holds at most its RLIMIT_NOFILE hard limit of connections
// (RunConns raises the soft limit and warns). Past the ephemeral port range
// (~28,000) toward a loopback target, RunConns spreads connections over
// 127.0.0.1, 127.0.0.2, ...; it never picks source addresses elsewhere.
//
// Publishers keep to 80% of the server's per-connection send limit
// (SendLimit, 20/s by default), so a rate needs rate/16 publishers; fanout
// sizes them itself unless told. Publishers are members of the room they
// send to, as in any chat: a room of M members delivers each message M
// times, whatever the rate, in both modes. Every member join makes the
// server send a presence frame to the room, so setup of M members in one
// room costs O(M²) frames; that is the server's real cost, not the bench's.
//
// Rooms are named bench-<random>-<n>, so every run starts with empty rooms
// and leaves its messages in the server's store.
package bench
