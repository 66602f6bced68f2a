package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// The bbolt side of a store copy (see copy.go).

var (
	_ Exporter = (*DB)(nil)
	_ Importer = (*DB)(nil)
)

// Count implements Inventory: bucket statistics, which walk the pages
// without decoding a value.
func (db *DB) Count(ctx context.Context) (Counts, error) {
	var c Counts
	err := db.bolt.View(func(tx *bolt.Tx) error {
		c = countTx(tx)
		return nil
	})
	return c, err
}

func countTx(tx *bolt.Tx) Counts {
	keys := func(name []byte) int64 {
		if b := tx.Bucket(name); b != nil {
			return int64(b.Stats().KeyN)
		}
		return 0
	}
	c := Counts{
		Users: keys(bucketUsers), Keys: keys(bucketKeys), Sessions: keys(bucketSessions),
		RefreshTokens: keys(bucketRefresh), Denied: keys(bucketDenied), Audit: keys(bucketAudit),
		AccessRules: keys(bucketAccess), Declared: keys(bucketDeclared),
	}
	if private := tx.Bucket(bucketPrivate); private != nil {
		// Members are one JSON list per room: counted by decoding it (a
		// list that does not decode counts none, and Export reports it).
		private.ForEach(func(_, v []byte) error {
			var ms []string
			c.PrivateRooms++
			if json.Unmarshal(v, &ms) == nil {
				c.Members += int64(len(ms))
			}
			return nil
		})
	}
	if reads := tx.Bucket(bucketReads); reads != nil {
		reads.ForEachBucket(func(user []byte) error {
			reads.Bucket(user).ForEach(func(_, v []byte) error {
				if len(v) == 8 {
					c.ReadMarkers++
				}
				return nil
			})
			return nil
		})
	}
	if rooms := tx.Bucket(bucketRooms); rooms != nil {
		rooms.ForEachBucket(func(name []byte) error {
			c.Rooms++
			if msgs := rooms.Bucket(name).Bucket(bucketMsgs); msgs != nil {
				c.Messages += int64(msgs.Stats().KeyN)
			}
			return nil
		})
	}
	return c
}

// RoomTallies implements Inventory, in the rooms bucket's (byte) order.
func (db *DB) RoomTallies(ctx context.Context, fn func(RoomTally) error) error {
	return db.bolt.View(func(tx *bolt.Tx) error {
		rooms := tx.Bucket(bucketRooms)
		return rooms.ForEachBucket(func(name []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			rb := rooms.Bucket(name)
			t := RoomTally{Name: string(name), LastID: rb.Sequence()}
			if msgs := rb.Bucket(bucketMsgs); msgs != nil {
				t.Messages = int64(msgs.Stats().KeyN)
			}
			return fn(t)
		})
	})
}

// Export implements Exporter: one read transaction, so the snapshot is
// consistent; values are decoded one at a time and handed on.
func (db *DB) Export(ctx context.Context, put func(Record) error) error {
	db.FlushAudit()
	return db.bolt.View(func(tx *bolt.Tx) error {
		if err := put(countTx(tx)); err != nil {
			return err
		}
		each := func(bucket []byte, fn func(k, v []byte) error) error {
			b := tx.Bucket(bucket)
			if b == nil {
				return nil
			}
			c := b.Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				if err := ctx.Err(); err != nil {
					return err
				}
				if err := fn(k, v); err != nil {
					return err
				}
			}
			return nil
		}
		decode := func(what string, k, v []byte, into any) error {
			if err := json.Unmarshal(v, into); err != nil {
				return fmt.Errorf("%w: %s %q: %v", ErrCorrupt, what, k, err)
			}
			return nil
		}
		err := each(bucketUsers, func(k, v []byte) error {
			var u User
			if err := decode("user", k, v, &u); err != nil {
				return err
			}
			return put(u)
		})
		if err == nil {
			err = each(bucketKeys, func(k, v []byte) error {
				var key Key
				if err := decode("key", k, v, &key); err != nil {
					return err
				}
				return put(key)
			})
		}
		if err == nil {
			err = each(bucketSessions, func(k, v []byte) error {
				var s Session
				if err := decode("session", k, v, &s); err != nil {
					return err
				}
				return put(s)
			})
		}
		if err == nil {
			err = each(bucketRefresh, func(k, v []byte) error {
				i := bytes.IndexByte(k, 0)
				if i < 0 {
					return fmt.Errorf("%w: refresh token key %x has no session id", ErrCorrupt, k)
				}
				var rec refreshRecord
				if err := decode("refresh token", k[:i], v, &rec); err != nil {
					return err
				}
				return put(RefreshToken{Hash: bytes.Clone(k[i+1:]), Session: rec.Session, User: rec.User, ExpiresAt: rec.ExpiresAt, Spent: rec.Spent})
			})
		}
		if err == nil {
			err = each(bucketDenied, func(k, v []byte) error {
				exp, err := time.Parse(time.RFC3339, string(v))
				if err != nil {
					return fmt.Errorf("%w: deny entry %q: bad expiry %q", ErrCorrupt, k, v)
				}
				return put(DenyEntry{ID: string(k), ExpiresAt: exp})
			})
		}
		if err == nil {
			err = exportRooms(ctx, tx, put)
		}
		if err == nil {
			err = each(bucketAccess, func(k, v []byte) error {
				user, pattern, ok := bytes.Cut(k, []byte{0})
				if !ok {
					return fmt.Errorf("%w: access rule key %q has no pattern", ErrCorrupt, k)
				}
				return put(AccessRule{User: string(user), Pattern: string(pattern), Perm: string(v)})
			})
		}
		if err == nil {
			err = each(bucketPrivate, func(k, v []byte) error {
				p := PrivateRoom{Name: string(k)}
				if err := decode("private room", k, v, &p.Members); err != nil {
					return err
				}
				if p.Members == nil {
					p.Members = []string{}
				}
				return put(p)
			})
		}
		if err == nil {
			err = exportReads(ctx, tx, put)
		}
		if err == nil {
			err = each(bucketDeclared, func(k, v []byte) error {
				d := DeclaredList{Kind: string(k)}
				if err := decode("declared list", k, v, &d.Names); err != nil {
					return err
				}
				if d.Names == nil {
					d.Names = []string{}
				}
				return put(d)
			})
		}
		if err == nil {
			err = each(bucketAudit, func(k, v []byte) error {
				var e AuditEntry
				if err := decode("audit entry", k, v, &e); err != nil {
					return err
				}
				return put(e)
			})
		}
		if err == nil {
			var seq uint64
			if b := tx.Bucket(bucketAudit); b != nil {
				seq = b.Sequence()
			}
			err = put(AuditSequence{Last: seq})
		}
		return err
	})
}

// exportRooms puts every room, then every room's messages in id order.
func exportRooms(ctx context.Context, tx *bolt.Tx, put func(Record) error) error {
	rooms := tx.Bucket(bucketRooms)
	err := rooms.ForEachBucket(func(name []byte) error {
		rb := rooms.Bucket(name)
		created, _ := time.Parse(time.RFC3339, string(rb.Get(keyCreated)))
		return put(RoomRecord{Name: string(name), Epoch: string(rb.Get(keyEpoch)), LastID: rb.Sequence(), Count: int64(readCount(rb)), CreatedAt: created})
	})
	if err != nil {
		return err
	}
	return rooms.ForEachBucket(func(name []byte) error {
		msgs := rooms.Bucket(name).Bucket(bucketMsgs)
		if msgs == nil {
			return nil
		}
		room := string(name)
		c := msgs.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			if len(k) != 8 {
				return fmt.Errorf("%w: room %q: message key %x is not an id", ErrCorrupt, room, k)
			}
			m := Message{Room: room, ID: binary.BigEndian.Uint64(k)}
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("%w: room %q message %d: %v", ErrCorrupt, room, m.ID, err)
			}
			if err := put(m); err != nil {
				return err
			}
		}
		return nil
	})
}

// exportReads puts every read marker, user by user, each user's by room
// (values that are not an 8-byte id are skipped, as ReadMarkers does).
func exportReads(ctx context.Context, tx *bolt.Tx, put func(Record) error) error {
	reads := tx.Bucket(bucketReads)
	if reads == nil {
		return nil
	}
	return reads.ForEachBucket(func(user []byte) error {
		c := reads.Bucket(user).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			if len(v) != 8 {
				continue
			}
			if err := put(ReadMarker{User: string(user), Room: string(k), ID: binary.BigEndian.Uint64(v)}); err != nil {
				return err
			}
		}
		return nil
	})
}

// Load implements Importer. The store must be empty; records are written
// in transactions of copyBatch records.
func (db *DB) Load(ctx context.Context) (Loader, error) {
	if db.readOnly {
		return nil, fmt.Errorf("store %s: %w", absPath(db.path), ErrReadOnly)
	}
	c, err := db.Count(ctx)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", db.path, err)
	}
	if !c.Empty() {
		return nil, fmt.Errorf("store %s %w (%s); copy into a new file", absPath(db.path), ErrNotEmpty, c)
	}
	return &boltLoader{db: db}, nil
}

// boltLoader is the Loader of a bbolt store. It is used by one goroutine.
type boltLoader struct {
	db      *DB
	pending []Record
	bytes   int // about the size of pending (RecordSize)
}

func (l *boltLoader) Count(ctx context.Context) (Counts, error) { return l.db.Count(ctx) }

func (l *boltLoader) RoomTallies(ctx context.Context, fn func(RoomTally) error) error {
	return l.db.RoomTallies(ctx, fn)
}

func (l *boltLoader) Put(ctx context.Context, r Record) error {
	if _, ok := r.(Counts); ok {
		return nil
	}
	l.pending = append(l.pending, r)
	l.bytes += RecordSize(r)
	if len(l.pending) >= CopyBatch || l.bytes >= CopyBatchBytes {
		return l.Flush(ctx)
	}
	return nil
}

// Flush writes the pending records in one transaction.
func (l *boltLoader) Flush(ctx context.Context) error {
	if len(l.pending) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	err := l.db.update(func(tx *bolt.Tx) error {
		w := boltWriter{tx: tx}
		for _, r := range l.pending {
			if err := w.write(r); err != nil {
				return err
			}
		}
		return nil
	})
	clear(l.pending)
	l.pending, l.bytes = l.pending[:0], 0
	if err != nil {
		return fmt.Errorf("store %s: %w", l.db.path, err)
	}
	return nil
}

func (l *boltLoader) Commit(ctx context.Context) error { return l.Flush(ctx) }

// Abort empties the store again: every bucket the load may have filled is
// dropped and the empty layout made again.
func (l *boltLoader) Abort() error {
	l.pending = nil
	return l.db.update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketUsers, bucketKeys, bucketSessions, bucketRefresh, bucketDenied, bucketRooms, bucketAudit,
			bucketAccess, bucketPrivate, bucketReads, bucketDeclared} {
			if err := tx.DeleteBucket(name); err != nil && tx.Bucket(name) != nil {
				return err
			}
		}
		for _, m := range migrations {
			if err := m(tx); err != nil {
				return err
			}
		}
		return nil
	})
}

// boltWriter writes records in one transaction; it keeps the bucket of the
// room whose messages it is writing.
type boltWriter struct {
	tx       *bolt.Tx
	room     string
	msgs     *bolt.Bucket
	reader   string       // the user whose read markers reads holds
	reads    *bolt.Bucket // reader's bucket of read markers
	auditBkt *bolt.Bucket
}

func (w *boltWriter) write(r Record) error {
	tx := w.tx
	switch r := r.(type) {
	case User:
		r.Name = string(userKey(r.Name))
		return put(tx.Bucket(bucketUsers), r.Name, r)
	case Key:
		return put(tx.Bucket(bucketKeys), r.Kid, r)
	case Session:
		return putJSON(tx.Bucket(bucketSessions), sessionKey(r.User, r.ID), r)
	case RefreshToken:
		key := append([]byte(r.Session+"\x00"), r.Hash...)
		return putJSON(tx.Bucket(bucketRefresh), key, refreshRecord{Session: r.Session, User: r.User, ExpiresAt: r.ExpiresAt.UTC(), Spent: r.Spent})
	case DenyEntry:
		return tx.Bucket(bucketDenied).Put([]byte(r.ID), []byte(r.ExpiresAt.UTC().Format(time.RFC3339)))
	case RoomRecord:
		return writeRoom(tx, r)
	case Message:
		if w.msgs == nil || w.room != r.Room {
			rb := tx.Bucket(bucketRooms).Bucket([]byte(r.Room))
			if rb == nil {
				return fmt.Errorf("message %d of room %q: the room was not copied before it", r.ID, r.Room)
			}
			w.room, w.msgs = r.Room, rb.Bucket(bucketMsgs)
			w.msgs.FillPercent = 0.9 // ids arrive in order: pack pages
		}
		data, err := json.Marshal(Message{From: r.From, Text: r.Text, TS: r.TS.UTC()})
		if err != nil {
			return err
		}
		return w.msgs.Put(idKey(r.ID), data)
	case AccessRule:
		return tx.Bucket(bucketAccess).Put(accessKey(r.User, r.Pattern), []byte(r.Perm))
	case PrivateRoom:
		b := tx.Bucket(bucketPrivate)
		if b.Get([]byte(r.Name)) != nil {
			return fmt.Errorf("private room %q: copied twice", r.Name)
		}
		return putJSON(b, []byte(r.Name), normMembers(r.Members))
	case ReadMarker:
		if w.reads == nil || w.reader != r.User {
			ub, err := tx.Bucket(bucketReads).CreateBucketIfNotExists([]byte(strings.ToLower(r.User)))
			if err != nil {
				return fmt.Errorf("read markers of %q: %w", r.User, err)
			}
			w.reader, w.reads = r.User, ub
		}
		return w.reads.Put([]byte(r.Room), idKey(r.ID))
	case DeclaredList:
		names := r.Names
		if names == nil {
			names = []string{}
		}
		return putJSON(tx.Bucket(bucketDeclared), []byte(r.Kind), names)
	case AuditEntry:
		b, err := w.audit()
		if err != nil {
			return err
		}
		r.Time = r.Time.UTC()
		return putJSON(b, auditKey(r.Time, r.Seq), r)
	case AuditSequence:
		b, err := w.audit()
		if err != nil {
			return err
		}
		return b.SetSequence(max(r.Last, b.Sequence()))
	case Counts:
		return nil
	}
	return fmt.Errorf("store copy: unknown record %T", r)
}

func (w *boltWriter) audit() (*bolt.Bucket, error) {
	if w.auditBkt == nil {
		b, err := w.tx.CreateBucketIfNotExists(bucketAudit)
		if err != nil {
			return nil, err
		}
		b.FillPercent = 0.9
		w.auditBkt = b
	}
	return w.auditBkt, nil
}

// writeRoom creates a room as roomBucket does, with r's epoch, times,
// count and last id (the bucket's sequence).
func writeRoom(tx *bolt.Tx, r RoomRecord) error {
	rb, err := tx.Bucket(bucketRooms).CreateBucket([]byte(r.Name))
	if errors.Is(err, berrors.ErrBucketExists) {
		return fmt.Errorf("room %q: copied twice", r.Name)
	}
	if err != nil {
		return fmt.Errorf("room %q: %w", r.Name, err)
	}
	if _, err := rb.CreateBucket(bucketMsgs); err != nil {
		return err
	}
	if r.Epoch != "" {
		if err := rb.Put(keyEpoch, []byte(r.Epoch)); err != nil {
			return err
		}
	}
	if err := rb.Put(keyCreated, []byte(r.CreatedAt.UTC().Format(time.RFC3339))); err != nil {
		return err
	}
	if err := rb.Put(keyCount, fmt.Appendf(nil, "%d", r.Count)); err != nil {
		return err
	}
	return rb.SetSequence(r.LastID)
}
