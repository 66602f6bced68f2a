// Package cluster joins several chatctl servers on one PostgreSQL store
// into one service (SPEC §7): a Broker carries, between nodes, the
// messages each node commits, typing indicators, read-marker echoes,
// presence, revocations (kicks) and change notices. It knows neither the hub nor the store: the hub calls a Broker
// and implements a Handler.
//
// Two brokers implement the interface. Local is the broker of a node that
// is alone (config broker: ""): it publishes nothing and costs nothing on
// the message path, and loops kicks and change notices back to the node's
// own Handler. NATS uses NATS core pub/sub (config broker:
// nats://HOST:PORT[,…]); nothing is stored in NATS.
//
// # Hints, not truth
//
// Everything a broker carries is a hint. The store assigns ids and keeps
// every message; a node that misses a publication (NATS down, a full
// delivery queue, a node that died between its commit and its publish)
// learns the missing ids from the store: a hole in a room's ids is fetched
// after a short wait, a lost tail by a periodic check of the room heads,
// and everything after Handler.Reconnected. A lost kick is caught by the
// store's change feed. So a lost publication costs latency, never a gap.
// Typing indicators and read echoes are not repaired: an indicator is
// ephemeral (the next one follows within a second while the user types),
// and a read marker is stored, so a client sees it on its next directory
// request or join.
//
// # Presence
//
// Each node keeps its own counts of room → user → connections and of
// user → connections in a Presence view, publishes every change at once
// (a delta with the new absolute counts, so a repeated or reordered delta
// is harmless), and every heartbeat a digest of what it has published: the
// number of its entries and the sum of their hashes, a few dozen bytes
// however many members it has. A node whose view of another disagrees with
// that node's digest (a delta was lost) asks it for its full roster, sent
// in parts when it is large. Each node merges the others' rosters into
// the same view: the union over live nodes. A node not heard from for presence_ttl is dropped
// (its members leave); a node that closes says goodbye and is dropped at
// once. While the broker is disconnected nothing expires (silence proves
// nothing then), and on reconnection every node gets a fresh TTL, the node
// republishes its roster and asks for everyone's. A starting node asks for
// the rosters too and gathers the replies for a short window before it
// serves.
//
// The view says when a user's count in a room crosses 0↔1 over the whole
// cluster, so the hub sends presence join and leave once for all of a
// user's tabs, on any node; joined.members is Presence.Members.
//
// # Concurrency
//
// All methods are safe for concurrent use once Start has returned. See
// Handler for the goroutines that call it. Presence guards its maps with
// one mutex and never calls out while holding it.
//
// # Caveats
//
// Room messages of one node reach another in the order the first published
// them; messages of different nodes interleave in any order, so receivers
// reorder by id (chat's reorder buffer does). A room's messages may still
// arrive just after Unsubscribe.
//
// Two processes given the same cluster.node_id would ignore each other's
// rosters; the broker logs an error when it sees its id with another
// incarnation.
//
// The per-user connection count is approximate: two nodes admitting a
// user's connections at the same moment each see the other's only after
// the delta arrives (SPEC §7 allows an overshoot of one per node, closed
// afterwards).
package cluster
