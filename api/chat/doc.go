// Package chat is the WebSocket chat hub of chatctl (SPEC §6): rooms,
// presence, ordered durable messages, history, and the limits and close
// codes of the protocol. It knows gorilla/websocket; it knows neither JWT
// nor bbolt, which reach it through the Authenticator and Store interfaces.
// The protocol is described for clients in docs/protocol.md and, as
// AsyncAPI 3, in api/asyncapi.json (served at /asyncapi.json), which tests
// hold to ClientFrameTypes, ServerFrameTypes, ErrorCodes and CloseCodes.
//
// # Basics
//
// The HTTP layer authenticates the request, checks Origin, upgrades, and
// calls Hub.Serve with the connection and the token's Identity. From then
// on the hub owns the connection: one reader goroutine for its whole life
// (each frame is handled, in order, on a short-lived goroutine it waits for,
// which keeps the long-lived stack small). Writes go through the hub's
// writer (see writer.go): by default the write pool, a few goroutines
// shared by all connections that write each connection's queue with one
// non-blocking write, handing over to the connection's own writer
// goroutine when a socket is full or a control frame is due; with
// Config.NoWritePool (ws.write_pool: false), always the connection's own
// writer goroutine. That goroutine runs only while it has something to
// write. Every write goes through one of the two, never both at once.
// Hub.Run pings connections, enforces token expiry and checks for slow
// consumers from a single sweep, so connections have no timers of their
// own; when its context ends it shuts the hub down.
//
// Protocol choices the SPEC leaves open:
//   - send and history need membership of the room (join first); otherwise
//     the reply is error forbidden.
//   - leave and a successful auth are acknowledged with an ack frame that
//     carries ref (and room for leave) but no id.
//   - A join with since replays at most Config.MaxReplay messages, the
//     newest ones, so the replay always joins up with the live stream; when
//     older ones were left out the joined frame has "more":true and the
//     client pages back with history before=messages[0].id.
//   - A store failure is reported as error code "internal", which SPEC §6
//     does not list; the client may retry.
//   - CloseRoom sends each member an error frame, code not_found, with a
//     "room" field.
//   - joined and history frames carry the room's "epoch" (Store.Epoch). A
//     join with since and an epoch other than the room's (it was deleted
//     and created again, and its ids restarted) replays from the start, as
//     since 0 would, with "reset":true. A join with since and no epoch is
//     taken at its word.
//   - Room names "." and ".." are refused (bad_request): they would be
//     path segments in every URL naming the room.
//   - Access (SPEC §8, access.go): the hub keeps an access.Table in memory
//     behind an atomic pointer and checks it on join, send, typing and
//     read: a few map lookups, never a store read per message. It is
//     replaced whole by SetAccess / RecheckAccess, which then re-check
//     every live member; one who lost read access gets a left frame
//     (reason forbidden) queued under the room's lock, so nothing of the
//     room follows it. Joins check the table under the room's lock too.
//   - Direct messages are rooms named @a+b (sorted); handle rewrites @b and
//     @b+a to that name before any handler runs, so every frame carries
//     it. read needs read access but no join; typing needs a join and write
//     access; unread counts come from a bounded store scan (at most
//     maxUnread messages) on join and on rooms, never per message.
//   - A text frame that is not valid UTF-8 closes the connection with 1007
//     (RFC 6455 §8.1). Once a close is requested, inbound frames are read
//     (for the peer's close reply) but no longer acted on.
//
// # Concurrency
//
// Locks are taken in the order Hub.mu, room.mu, client.mu, pool.mu; no
// goroutine writes to a socket while holding any of them. With a broker
// (cluster.go), room.mu may be held while calling the broker's
// SetPresence, View and Subscribe, which take only the broker's own locks;
// the broker calls the hub (cluster.Handler) holding none of them. Broadcasting only
// appends to each member's queue (a slice guarded by client.mu) and starts
// its writer (the write pool's writes never block), so a slow member never
// delays the others. A member that falls behind is closed with 4008: when
// its queue has held more than Config.Queue frames for Config.QueueWait, or
// would hold more than Config.QueueBytes bytes beyond the frame being
// written. A count of replies alone closes nobody: a client that pipelines
// requests gets its replies queued faster than a writer runs, and reads
// them. A broadcast is encoded once,
// as a complete WebSocket frame shared by every recipient, and a writer
// sends its whole queue with one write.
//
// A send blocks its connection's reader until the store commits, so each
// connection's messages keep their order, while different connections
// commit concurrently (the store can batch them into one fsync). Commits
// come back in any order; each room buffers them and broadcasts in id
// order, so every member sees ids ascending without gaps. The ack goes to
// the sender only after the commit.
//
// # Store contract
//
// AppendMessage returns only after the message is durable. Ids start at 1
// in each room and increase by one; a failed AppendMessage uses no id (with
// bbolt: NextSequence inside the same transaction as the Put, so a rollback
// returns it). It must be safe to call concurrently, and should batch
// concurrent calls so that many rooms share an fsync (chatctl's store
// commits in one transaction whatever queued during the previous commit).
// A send holds its connection's reader for the commit, which is what
// bounds one connection's send rate, not the whole server's.
// The reads must be cheap: join holds its room's lock while it reads.
//
// # Caveats
//
// The writers send data frames they framed themselves straight to the
// socket (one write per batch) and control frames through gorilla.
// gorilla itself writes protocol-error close frames (1002) from the reader
// goroutine; each frame is a single Write call and
// the socket serialises Write calls, so frames never interleave, but a data
// frame may follow such a close frame when the two race. The connection is
// being dropped at that point anyway.
//
// If the store ever leaves a hole in a room's ids, the room waits for the
// missing id until no append is in flight and then moves on; members see
// the hole. A hub joined to other nodes (UseBroker, cluster.go) never
// skips a hole: it reads the missing ids from the store instead. Rooms live in memory only while they have members or sends in
// flight.
package chat
