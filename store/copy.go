package store

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"time"
)

// Copying a store (`chatctl store copy`, SPEC §7) streams records from an
// Exporter into a Loader, then checks what arrived:
//
//	Export     one consistent snapshot of the source, as a stream:
//	           Counts first, then users, keys, sessions, refresh tokens,
//	           deny-list entries, rooms, messages (room by room, each room's
//	           in id order), access rules, private rooms (each with its
//	           members), read markers, declared lists, audit entries, and
//	           last the audit sequence.
//	Loader     writes the stream in batches into an empty target; nothing
//	           of it is kept unless Commit is called.
//	Copy       counts every kind on both sides and compares every room's
//	           last id and number of messages, in name order, before it
//	           commits; any difference aborts the load and is an error.
//
// Records carry everything raw: password hashes, secrets, token versions,
// refresh-token hashes, ids and epochs, so a copy serves the same tokens
// and continues every room at its last id + 1. No side is ever held in
// memory whole: batches are bounded (copyBatch) and the per-room check
// walks both sides together.

// Record is one item of a store's contents: a User, Key, Session,
// RefreshToken, DenyEntry, RoomRecord, Message, AccessRule, PrivateRoom,
// ReadMarker, DeclaredList, AuditEntry, AuditSequence, or the Counts that
// open an export.
type Record interface{ isRecord() }

func (User) isRecord()          {}
func (Key) isRecord()           {}
func (Session) isRecord()       {}
func (RefreshToken) isRecord()  {}
func (DenyEntry) isRecord()     {}
func (RoomRecord) isRecord()    {}
func (Message) isRecord()       {}
func (AccessRule) isRecord()    {}
func (PrivateRoom) isRecord()   {}
func (ReadMarker) isRecord()    {}
func (DeclaredList) isRecord()  {}
func (AuditEntry) isRecord()    {}
func (AuditSequence) isRecord() {}
func (Counts) isRecord()        {}

// RefreshToken is a stored refresh token: the SHA-256 of the token (the
// token itself is never stored), its session and user, its expiry, and
// whether it was spent (kept so that a replay is recognised as reuse).
type RefreshToken struct {
	Hash      []byte
	Session   string
	User      string
	ExpiresAt time.Time
	Spent     bool
}

// DenyEntry is an entry of the deny list: a revoked access token's jti or
// an ended session's id, refused until ExpiresAt.
type DenyEntry struct {
	ID        string
	ExpiresAt time.Time
}

// RoomRecord is a room as stored: Count is the stored message count and
// LastID the last id handed out (the next message gets LastID+1, even
// when the messages up to LastID have been pruned).
type RoomRecord struct {
	Name      string
	Epoch     string
	LastID    uint64
	Count     int64
	CreatedAt time.Time
}

// ReadMarker is one user's read marker in one room (SetReadMarker).
type ReadMarker struct {
	User string
	Room string
	ID   uint64
}

// DeclaredList is what SetDeclared last recorded for a kind: the names
// the config file declared when it was last applied.
type DeclaredList struct {
	Kind  string
	Names []string
}

// AuditSequence is the last sequence number the audit log handed out.
type AuditSequence struct {
	Last uint64
}

// RoomTally is what the copy compares per room: the last id and the
// number of messages actually stored.
type RoomTally struct {
	Name     string `json:"name"`
	LastID   uint64 `json:"last_id"`
	Messages int64  `json:"messages"`
}

// Counts is the number of records of each kind in a store.
type Counts struct {
	Users         int64 `json:"users"`
	Keys          int64 `json:"keys"`
	Sessions      int64 `json:"sessions"`
	RefreshTokens int64 `json:"refresh_tokens"`
	Denied        int64 `json:"denied"`
	Rooms         int64 `json:"rooms"`
	Messages      int64 `json:"messages"`
	AccessRules   int64 `json:"access_rules"`
	PrivateRooms  int64 `json:"private_rooms"`
	Members       int64 `json:"room_members"`
	ReadMarkers   int64 `json:"read_markers"`
	Declared      int64 `json:"declared_lists"`
	Audit         int64 `json:"audit"`
}

// List gives the kinds of Counts in the order people read them, with
// the name a report uses.
func (c Counts) List() []struct {
	Name string
	N    int64
} {
	return []struct {
		Name string
		N    int64
	}{
		{"users", c.Users}, {"keys", c.Keys}, {"sessions", c.Sessions},
		{"refresh tokens", c.RefreshTokens}, {"deny entries", c.Denied},
		{"rooms", c.Rooms}, {"messages", c.Messages}, {"access rules", c.AccessRules},
		{"private rooms", c.PrivateRooms}, {"room members", c.Members},
		{"read markers", c.ReadMarkers}, {"declared lists", c.Declared},
		{"audit entries", c.Audit},
	}
}

// Empty reports whether the store holds nothing at all.
func (c Counts) Empty() bool { return c == Counts{} }

// String names the kinds present, e.g. "2 users, 1 keys".
func (c Counts) String() string {
	var parts []string
	for _, k := range c.List() {
		if k.N != 0 {
			parts = append(parts, fmt.Sprintf("%d %s", k.N, k.Name))
		}
	}
	if len(parts) == 0 {
		return "empty"
	}
	return strings.Join(parts, ", ")
}

// count adds r to c.
func (c *Counts) count(r Record) {
	switch r := r.(type) {
	case User:
		c.Users++
	case Key:
		c.Keys++
	case Session:
		c.Sessions++
	case RefreshToken:
		c.RefreshTokens++
	case DenyEntry:
		c.Denied++
	case RoomRecord:
		c.Rooms++
	case Message:
		c.Messages++
	case AccessRule:
		c.AccessRules++
	case PrivateRoom:
		c.PrivateRooms++
		c.Members += int64(len(r.Members))
	case ReadMarker:
		c.ReadMarkers++
	case DeclaredList:
		c.Declared++
	case AuditEntry:
		c.Audit++
	}
}

// Inventory is what a copy checks on either side.
type Inventory interface {
	// Count counts the records of each kind.
	Count(ctx context.Context) (Counts, error)
	// RoomTallies calls fn for every room, in byte order of the names.
	RoomTallies(ctx context.Context, fn func(RoomTally) error) error
}

// Exporter is a store that can be copied from.
type Exporter interface {
	Inventory
	// Export calls put with the store's records in the order described
	// above, from one consistent snapshot, Counts first; it stops at the
	// first error put returns.
	Export(ctx context.Context, put func(Record) error) error
}

// Importer is a store that can be copied into.
type Importer interface {
	// Load starts loading into the store, which must be empty (else an
	// error wrapping ErrNotEmpty).
	Load(ctx context.Context) (Loader, error)
}

// Loader writes records into an empty store. Its Inventory counts what it
// has written so far (after Flush).
type Loader interface {
	Inventory
	// Put writes r, or buffers it for the next batch.
	Put(ctx context.Context, r Record) error
	// Flush writes what is buffered.
	Flush(ctx context.Context) error
	// Commit makes the load final.
	Commit(ctx context.Context) error
	// Abort leaves the store empty again, as it was before Load.
	Abort() error
}

// ErrNotEmpty is returned by Importer.Load for a store that holds
// anything.
var ErrNotEmpty = errors.New("is not empty")

// ErrMismatch is returned by Copy when the target does not hold what the
// source does.
var ErrMismatch = errors.New("copy does not match the source")

// Loaders write at most CopyBatch records, or about CopyBatchBytes of
// them, per transaction or COPY: few enough to bound memory whatever the
// size of the messages, many enough that a batch's commit costs little.
const (
	CopyBatch      = 10000
	CopyBatchBytes = 4 << 20
)

// RecordSize is about how many bytes r takes in a loader's batch.
func RecordSize(r Record) int {
	const overhead = 128
	switch r := r.(type) {
	case Message:
		return overhead + len(r.Room) + len(r.From) + len(r.Text)
	case AuditEntry:
		return overhead + len(r.Action) + len(r.Actor) + len(r.From) + len(r.Target) + len(r.Detail)
	case User:
		return overhead + len(r.Name) + len(r.Hash)
	case AccessRule:
		return overhead + len(r.User) + len(r.Pattern) + len(r.Perm)
	case PrivateRoom:
		n := overhead + len(r.Name)
		for _, m := range r.Members {
			n += 32 + len(m)
		}
		return n
	case ReadMarker:
		return overhead + len(r.User) + len(r.Room)
	case DeclaredList:
		n := overhead + len(r.Kind)
		for _, name := range r.Names {
			n += 16 + len(name)
		}
		return n
	}
	return overhead
}

// progressStep is how often (in messages) Copy may report progress.
const progressStep = 10000

// CopyOptions tune Copy. The zero value copies silently.
type CopyOptions struct {
	// Progress, when set, is called with the messages copied so far and
	// the source's total: at most every Every (at each 10,000 messages
	// once Every has passed since the last call), and once at the end.
	Progress func(done, total int64)
	// Every is the least time between two progress calls; 0 reports
	// every 10,000 messages.
	Every time.Duration
}

// CopyReport is what Copy found on both sides.
type CopyReport struct {
	Source Counts `json:"source"`
	Target Counts `json:"target"`
	// RoomsChecked is how many rooms had their last id and messages
	// compared.
	RoomsChecked int64 `json:"rooms_checked"`
	// Mismatches names every difference found (at most a few rooms).
	Mismatches []string `json:"mismatches"`
	Seconds    float64  `json:"seconds"`
}

// maxRoomMismatches bounds the rooms a report names.
const maxRoomMismatches = 5

// Copy copies everything src holds into dst, which must be empty, and
// checks the result: counts of every kind, and each room's last id and
// number of messages. On any difference, or any error, the load is
// aborted (dst is left empty) and the error says what differs; the report
// is returned in both cases.
func Copy(ctx context.Context, src Exporter, dst Importer, opts CopyOptions) (rep CopyReport, err error) {
	start := time.Now()
	loader, err := dst.Load(ctx)
	if err != nil {
		return rep, err
	}
	committed := false
	defer func() {
		if !committed {
			if aerr := loader.Abort(); aerr != nil {
				err = fmt.Errorf("%w (and emptying the target failed: %v)", err, aerr)
			}
		}
	}()

	var streamed Counts
	var snapshot *Counts
	var last time.Time
	reported := int64(-1)
	err = src.Export(ctx, func(r Record) error {
		if c, ok := r.(Counts); ok {
			if snapshot == nil {
				snapshot = &c
			}
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		streamed.count(r)
		if _, ok := r.(Message); ok && opts.Progress != nil && streamed.Messages%progressStep == 0 &&
			time.Since(last) >= opts.Every && snapshot != nil {
			opts.Progress(streamed.Messages, snapshot.Messages)
			last, reported = time.Now(), streamed.Messages
		}
		return loader.Put(ctx, r)
	})
	if err == nil {
		err = loader.Flush(ctx)
	}
	if err != nil {
		return rep, err
	}
	if snapshot == nil {
		return rep, errors.New("export gave no counts")
	}
	if opts.Progress != nil && streamed.Messages > 0 && reported != streamed.Messages {
		opts.Progress(streamed.Messages, snapshot.Messages)
	}
	rep.Source = *snapshot
	if rep.Target, err = loader.Count(ctx); err != nil {
		return rep, err
	}
	rep.Mismatches = compareCounts("source", rep.Source, "export", streamed)
	rep.Mismatches = append(rep.Mismatches, compareCounts("source", rep.Source, "target", rep.Target)...)
	n, rooms, err := compareRooms(ctx, src, loader)
	if err != nil {
		return rep, err
	}
	rep.RoomsChecked, rep.Mismatches = n, append(rep.Mismatches, rooms...)
	rep.Seconds = time.Since(start).Seconds()
	if len(rep.Mismatches) > 0 {
		return rep, fmt.Errorf("%w: %s; the target was left empty", ErrMismatch, strings.Join(rep.Mismatches, "; "))
	}
	if err := loader.Commit(ctx); err != nil {
		return rep, err
	}
	committed = true
	rep.Seconds = time.Since(start).Seconds()
	return rep, nil
}

// compareCounts names each kind whose count differs between a and b.
func compareCounts(aName string, a Counts, bName string, b Counts) []string {
	var out []string
	al, bl := a.List(), b.List()
	for i := range al {
		if al[i].N != bl[i].N {
			out = append(out, fmt.Sprintf("%s: %d in the %s, %d in the %s", al[i].Name, al[i].N, aName, bl[i].N, bName))
		}
	}
	return out
}

// compareRooms walks the rooms of both sides together, in name order,
// and names the rooms that differ (at most maxRoomMismatches, then how
// many more). It returns how many rooms it compared.
func compareRooms(ctx context.Context, src, dst Inventory) (int64, []string, error) {
	next, stop := iter.Pull2(tallies(ctx, src))
	defer stop()
	var out []string
	more := 0
	note := func(format string, args ...any) {
		if len(out) < maxRoomMismatches {
			out = append(out, fmt.Sprintf(format, args...))
		} else {
			more++
		}
	}
	var n int64
	s, serr, sok := next()
	err := dst.RoomTallies(ctx, func(d RoomTally) error {
		for sok && serr == nil && s.Name < d.Name {
			note("room %q: in the source only", s.Name)
			s, serr, sok = next()
		}
		if serr != nil {
			return serr
		}
		if !sok || s.Name != d.Name {
			note("room %q: in the target only", d.Name)
			return nil
		}
		n++
		if s.LastID != d.LastID {
			note("room %q: last id %d in the source, %d in the target", s.Name, s.LastID, d.LastID)
		}
		if s.Messages != d.Messages {
			note("room %q: %d messages in the source, %d in the target", s.Name, s.Messages, d.Messages)
		}
		s, serr, sok = next()
		return nil
	})
	for err == nil && sok && serr == nil {
		note("room %q: in the source only", s.Name)
		s, serr, sok = next()
	}
	if err == nil {
		err = serr
	}
	if more > 0 {
		out = append(out, fmt.Sprintf("%d more room differences", more))
	}
	return n, out, err
}

// tallies turns inv's RoomTallies into a sequence (for iter.Pull2).
func tallies(ctx context.Context, inv Inventory) iter.Seq2[RoomTally, error] {
	return func(yield func(RoomTally, error) bool) {
		stopped := errors.New("stopped")
		err := inv.RoomTallies(ctx, func(t RoomTally) error {
			if !yield(t, nil) {
				return stopped
			}
			return nil
		})
		if err != nil && err != stopped {
			yield(RoomTally{}, err)
		}
	}
}
