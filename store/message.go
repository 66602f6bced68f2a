package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/chatctl/chatctl/auth"
)

// Chat messages live in one nested bucket per room:
//
//	rooms/<room>            the room; its sequence is the last message id
//	rooms/<room>/msgs       big-endian id -> Message (JSON)
//	rooms/<room> "count"    number of messages kept (decimal)
//	rooms/<room> "created"  creation time (RFC 3339)
//	rooms/<room> "epoch"    random id of this incarnation of the room
//
// Deleting a room and creating it again restarts its ids at 1; the epoch
// tells the two apart, so a client resuming with "since" learns that its
// ids belong to a room that is gone. Rooms created before epochs existed
// have none (the empty epoch) until they are deleted.
//
// Appends go through one committer goroutine (commitLoop), which commits
// concurrent appends (from many connections and rooms) in one transaction
// and one fsync: group commit.

var (
	bucketRooms = []byte("rooms")
	bucketMsgs  = []byte("msgs")
	keyCount    = []byte("count")
	keyCreated  = []byte("created")
	keyEpoch    = []byte("epoch")
)

// Message is one stored chat message.
type Message struct {
	Room string `json:"-"`
	ID   uint64 `json:"-"`
	// Epoch is the room's epoch when AppendMessage stored the message; the
	// reads leave it empty (see RoomEpoch).
	Epoch string    `json:"-"`
	From  string    `json:"from"`
	Text  string    `json:"text"`
	TS    time.Time `json:"ts"`
}

// Room describes a room's stored history.
type Room struct {
	Name      string    `json:"name"`
	Messages  int       `json:"messages"`
	LastID    uint64    `json:"last_id"`
	CreatedAt time.Time `json:"created_at"`
}

func idKey(id uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], id)
	return b[:]
}

// Retention bounds what AppendMessage keeps per room: at most MaxPerRoom
// messages (0: no bound). Age is enforced by PruneMessages.
type Retention struct {
	MaxPerRoom int
}

// SetRetention sets the per-room bound applied by AppendMessage.
func (db *DB) SetRetention(r Retention) { db.retention.Store(&r) }

// AppendMessage commits a message to room (creating the room) with the
// next id and returns it; it returns only once the message is durable.
//
// Appends are group-committed: one goroutine writes everything queued in
// a single transaction. A message arriving after a quiet spell commits at
// once; under load, what arrives during a commit goes into the next one
// (see commitLoop).
func (db *DB) AppendMessage(ctx context.Context, room, from, text string, ts time.Time) (Message, error) {
	m := Message{Room: room, From: from, Text: text, TS: ts.UTC()}
	data, err := json.Marshal(m)
	if err != nil {
		return Message{}, err
	}
	req := &appendReq{msg: m, data: data, done: make(chan error, 1)}
	db.appendOnce.Do(db.startCommitter)
	db.appendMu.RLock()
	if db.appendClosed {
		db.appendMu.RUnlock()
		return Message{}, fmt.Errorf("append message: %w", berrors.ErrDatabaseNotOpen)
	}
	select {
	case db.appends <- req:
		db.appendMu.RUnlock()
	case <-ctx.Done():
		db.appendMu.RUnlock()
		return Message{}, ctx.Err()
	}
	// Once queued the append will commit or fail; wait for it even if ctx
	// ends, so a caller never reports failure for a committed message.
	if err := <-req.done; err != nil {
		return Message{}, fmt.Errorf("append message: %w", err)
	}
	return req.msg, nil
}

// appendReq is one queued append; the committer fills msg.ID.
type appendReq struct {
	msg  Message
	data []byte
	done chan error
}

// maxGroup bounds one group commit, so a flood still commits in slices.
const maxGroup = 4096

// Group commit, without a timer. A commit costs two fsyncs whatever it
// carries, so under load it must carry many messages; waiting for company
// on a timer buys that with latency for every message (with a 10 ms pace,
// 5 ms on average, up to 10). Waiting is not needed: while one commit runs
// (about a millisecond here), whatever arrives queues for the next one. And
// a server busy with fan-out reads its sockets in bursts, one per network
// poll, each burst readying many senders at once; so before taking the
// group the committer yields once, letting every sender that is already
// runnable queue its message. Under a 1,000-member fan-out at 1,600
// messages a second this makes about 130 commits a second, fewer than the
// 10 ms pace allowed, and a lone message still commits at once.

func (db *DB) startCommitter() {
	db.appends = make(chan *appendReq, maxGroup)
	db.committerDone = make(chan struct{})
	go db.commitLoop()
}

// commitLoop takes whatever is queued and commits it as one transaction,
// until the queue is closed by Close.
func (db *DB) commitLoop() {
	defer close(db.committerDone)
	group := make([]*appendReq, 0, maxGroup)
	for first := range db.appends {
		group = append(group[:0], first)
		runtime.Gosched() // let the senders already runnable queue theirs
	fill:
		for len(group) < maxGroup {
			select {
			case r, ok := <-db.appends:
				if !ok {
					break fill
				}
				group = append(group, r)
			default:
				break fill
			}
		}
		err := db.update(func(tx *bolt.Tx) error {
			for _, r := range group {
				if err := db.appendTx(tx, r); err != nil {
					return err
				}
			}
			return nil
		})
		if err == nil {
			db.commits.Add(1)
		}
		for _, r := range group {
			r.done <- err
		}
	}
}

// MessageCommits returns how many transactions have committed messages
// since Open: with the count of messages, the size of the average group.
func (db *DB) MessageCommits() uint64 { return db.commits.Load() }

// appendTx writes one message inside the group's transaction.
func (db *DB) appendTx(tx *bolt.Tx, r *appendReq) error {
	rb, err := roomBucket(tx, r.msg.Room, r.msg.TS)
	if err != nil {
		return err
	}
	msgs := rb.Bucket(bucketMsgs)
	id, err := rb.NextSequence()
	if err != nil {
		return err
	}
	if err := msgs.Put(idKey(id), r.data); err != nil {
		return err
	}
	r.msg.ID = id
	r.msg.Epoch = string(rb.Get(keyEpoch))
	count := readCount(rb) + 1
	if ret := db.retention.Load(); ret != nil && ret.MaxPerRoom > 0 {
		// Drop the oldest beyond the bound: one per append once full.
		c := msgs.Cursor()
		for k, _ := c.First(); count > ret.MaxPerRoom && k != nil; k, _ = c.First() {
			if err := c.Delete(); err != nil {
				return err
			}
			count--
		}
	}
	return rb.Put(keyCount, fmt.Appendf(nil, "%d", count))
}

// stopCommitter commits what is queued and stops the committer.
func (db *DB) stopCommitter() {
	db.appendMu.Lock()
	closed := db.appendClosed
	db.appendClosed = true
	db.appendMu.Unlock()
	if closed || db.appends == nil {
		return
	}
	close(db.appends)
	<-db.committerDone
}

func roomBucket(tx *bolt.Tx, room string, now time.Time) (*bolt.Bucket, error) {
	rooms := tx.Bucket(bucketRooms)
	rb := rooms.Bucket([]byte(room))
	if rb != nil {
		return rb, nil
	}
	rb, err := rooms.CreateBucket([]byte(room))
	if err != nil {
		return nil, err
	}
	if _, err := rb.CreateBucket(bucketMsgs); err != nil {
		return nil, err
	}
	if err := rb.Put(keyEpoch, []byte(auth.RandomID(9))); err != nil {
		return nil, err
	}
	return rb, rb.Put(keyCreated, []byte(now.UTC().Format(time.RFC3339)))
}

// RoomEpoch returns the epoch of room: a random id chosen when its history
// began, new each time the room is created again after DeleteRoom. It is
// "" for a room without stored history, and for a room stored before
// epochs existed.
func (db *DB) RoomEpoch(room string) (string, error) {
	var epoch string
	err := db.bolt.View(func(tx *bolt.Tx) error {
		if rb := tx.Bucket(bucketRooms).Bucket([]byte(room)); rb != nil {
			epoch = string(rb.Get(keyEpoch))
		}
		return nil
	})
	return epoch, err
}

// Head is where a room's stored history ends: its last id and its epoch.
type Head struct {
	LastID uint64
	Epoch  string
}

// Heads returns the head of each named room with stored history, in one
// read transaction.
func (db *DB) Heads(rooms []string) (map[string]Head, error) {
	out := make(map[string]Head, len(rooms))
	err := db.bolt.View(func(tx *bolt.Tx) error {
		for _, name := range rooms {
			if rb := tx.Bucket(bucketRooms).Bucket([]byte(name)); rb != nil {
				out[name] = Head{LastID: rb.Sequence(), Epoch: string(rb.Get(keyEpoch))}
			}
		}
		return nil
	})
	return out, err
}

func readCount(rb *bolt.Bucket) int {
	var n int
	fmt.Sscanf(string(rb.Get(keyCount)), "%d", &n)
	return n
}

func decodeMessages(room string, k, v []byte, limit int, next func() ([]byte, []byte)) ([]Message, error) {
	var out []Message
	for ; k != nil && len(out) < limit; k, v = next() {
		m := Message{Room: room, ID: binary.BigEndian.Uint64(k)}
		if err := json.Unmarshal(v, &m); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// MessagesAfter returns up to limit messages of room with id > after,
// oldest first. An unknown room has no messages.
func (db *DB) MessagesAfter(room string, after uint64, limit int) ([]Message, error) {
	if after == math.MaxUint64 {
		return nil, nil // no id is larger (and after+1 would wrap to 0)
	}
	return db.readRoom(room, limit, func(c *bolt.Cursor) ([]Message, error) {
		k, v := c.Seek(idKey(after + 1))
		return decodeMessages(room, k, v, limit, c.Next)
	})
}

// MessagesBefore returns the limit newest messages of room with id <
// before (before 0: the newest), oldest first.
func (db *DB) MessagesBefore(room string, before uint64, limit int) ([]Message, error) {
	out, err := db.readRoom(room, limit, func(c *bolt.Cursor) ([]Message, error) {
		var k, v []byte
		if sk, _ := c.Seek(idKey(before)); before == 0 || sk == nil {
			k, v = c.Last() // every id is < before
		} else {
			k, v = c.Prev()
		}
		return decodeMessages(room, k, v, limit, c.Prev)
	})
	// Newest first from the cursor; callers want oldest first.
	slices.Reverse(out)
	return out, err
}

// readRoom runs read on a cursor over room's messages in a read
// transaction; an unknown room or a limit below 1 reads nothing.
func (db *DB) readRoom(room string, limit int, read func(*bolt.Cursor) ([]Message, error)) ([]Message, error) {
	var out []Message
	err := db.bolt.View(func(tx *bolt.Tx) error {
		rb := tx.Bucket(bucketRooms).Bucket([]byte(room))
		if rb == nil || limit <= 0 {
			return nil
		}
		var err error
		out, err = read(rb.Bucket(bucketMsgs).Cursor())
		return err
	})
	return out, err
}

// Rooms lists every room with stored history, by name.
func (db *DB) Rooms() ([]Room, error) {
	var out []Room
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRooms).ForEachBucket(func(name []byte) error {
			rb := tx.Bucket(bucketRooms).Bucket(name)
			created, _ := time.Parse(time.RFC3339, string(rb.Get(keyCreated)))
			out = append(out, Room{Name: string(name), Messages: readCount(rb), LastID: rb.Sequence(), CreatedAt: created})
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

// DeleteRoom removes a room and its history, or returns ErrNotFound.
func (db *DB) DeleteRoom(name string) error {
	return db.update(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketRooms).DeleteBucket([]byte(name))
		hadHistory := !errors.Is(err, berrors.ErrBucketNotFound)
		if err != nil && hadHistory {
			return err
		}
		// A private room goes whole: its members too.
		priv := tx.Bucket(bucketPrivate)
		wasPrivate := priv != nil && priv.Get([]byte(name)) != nil
		if wasPrivate {
			if err := priv.Delete([]byte(name)); err != nil {
				return err
			}
		}
		if !hadHistory && !wasPrivate {
			return fmt.Errorf("room %s: %w", name, ErrNotFound)
		}
		return nil
	})
}

// PruneMessages deletes messages older than maxAge in every room and
// returns how many went.
func (db *DB) PruneMessages(maxAge time.Duration) (int, error) {
	cutoff := db.now().Add(-maxAge)
	deleted := 0
	err := db.update(func(tx *bolt.Tx) error {
		rooms := tx.Bucket(bucketRooms)
		return rooms.ForEachBucket(func(name []byte) error {
			rb := rooms.Bucket(name)
			c := rb.Bucket(bucketMsgs).Cursor()
			n := 0
			for k, v := c.First(); k != nil; k, v = c.First() {
				var m Message
				if err := json.Unmarshal(v, &m); err != nil {
					return err
				}
				if !m.TS.Before(cutoff) {
					break
				}
				if err := c.Delete(); err != nil {
					return err
				}
				n++
			}
			if n == 0 {
				return nil
			}
			deleted += n
			return rb.Put(keyCount, fmt.Appendf(nil, "%d", readCount(rb)-n))
		})
	})
	return deleted, err
}
