package chat

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"
)

// memStore is an in-memory Store for tests. It keeps the real store's
// contract (ids from 1 per room, no id used by a failed append) and can
// simulate commit latency, so that concurrent appends return out of order as
// they do with bbolt's batched commits.
type memStore struct {
	mu     sync.Mutex
	rooms  map[string][]Message // guarded by mu
	epochs map[string]string    // guarded by mu; set by a room's first append
	nextEp int                  // guarded by mu; makes epochs unique
	fail   error                // guarded by mu; returned by AppendMessage when set
	jitter time.Duration        // max simulated commit latency after the id is assigned
	gate   chan struct{}        // when non-nil, AppendMessage waits for a value on it
	reads  map[string]uint64    // guarded by mu; "user\x00room" -> read marker
	users  map[string]bool      // guarded by mu; users that exist (DM peers); nil: everyone
}

var _ RoomStore = (*memStore)(nil)

// SetReadMarker implements RoomStore.
func (s *memStore) SetReadMarker(user, room string, id uint64) (uint64, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reads == nil {
		s.reads = map[string]uint64{}
	}
	k := user + "\x00" + room
	if id <= s.reads[k] {
		return s.reads[k], false, nil
	}
	s.reads[k] = id
	return id, true, nil
}

// ReadMarkers implements RoomStore.
func (s *memStore) ReadMarkers(user string) (map[string]uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]uint64{}
	for k, v := range s.reads {
		if u, room, _ := strings.Cut(k, "\x00"); u == user {
			out[room] = v
		}
	}
	return out, nil
}

// MessagesAfter implements RoomStore.
func (s *memStore) MessagesAfter(room string, after uint64, limit int) ([]Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ms := s.rooms[room]
	if after >= uint64(len(ms)) {
		return nil, nil
	}
	ms = ms[after:]
	return slices.Clone(ms[:min(limit, len(ms))]), nil
}

// RoomList implements RoomStore.
func (s *memStore) RoomList() ([]RoomSummary, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []RoomSummary
	for name, ms := range s.rooms {
		if len(ms) > 0 {
			out = append(out, RoomSummary{Name: name, LastID: ms[len(ms)-1].ID, LastTS: ms[len(ms)-1].TS})
		}
	}
	return out, nil
}

// UserExists implements RoomStore.
func (s *memStore) UserExists(name string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.users == nil || s.users[name], nil
}

var _ Store = (*memStore)(nil)

func newMemStore() *memStore {
	return &memStore{rooms: make(map[string][]Message), epochs: make(map[string]string)}
}

var errStoreDown = errors.New("store down")

func (s *memStore) AppendMessage(ctx context.Context, room, from, text string, ts time.Time) (Message, error) {
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return Message{}, ctx.Err()
		}
	}
	s.mu.Lock()
	if s.fail != nil {
		err := s.fail
		s.mu.Unlock()
		return Message{}, err
	}
	if s.epochs[room] == "" {
		s.nextEp++
		s.epochs[room] = fmt.Sprintf("ep%d", s.nextEp)
	}
	m := Message{Room: room, ID: uint64(len(s.rooms[room]) + 1), From: from, Text: text, TS: ts}
	s.rooms[room] = append(s.rooms[room], m)
	m.Epoch = s.epochs[room]
	s.mu.Unlock()
	if s.jitter > 0 {
		// Simulated fsync: the id is fixed, the return is delayed.
		time.Sleep(rand.N(s.jitter))
	}
	return m, nil
}

// Epoch implements Store.
func (s *memStore) Epoch(room string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.epochs[room], nil
}

// drop deletes room and its history, as the admin's room delete does.
func (s *memStore) drop(room string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.rooms, room)
	delete(s.epochs, room)
}

func (s *memStore) setFail(err error) {
	s.mu.Lock()
	s.fail = err
	s.mu.Unlock()
}

func (s *memStore) MessagesBefore(room string, before uint64, limit int) ([]Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ms := s.rooms[room]
	if before > 0 && before-1 < uint64(len(ms)) {
		ms = ms[:before-1]
	}
	return slices.Clone(ms[max(0, len(ms)-limit):]), nil
}

// fill appends n messages to room directly, as if sent earlier.
func (s *memStore) fill(room string, n int) {
	for i := 0; i < n; i++ {
		_, _ = s.AppendMessage(context.Background(), room, "seed", "old", time.Now())
	}
}

// fakeAuth accepts the tokens in its map.
type fakeAuth struct {
	mu     sync.Mutex
	tokens map[string]Identity
}

func (a *fakeAuth) Authenticate(_ context.Context, token string) (Identity, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	id, ok := a.tokens[token]
	if !ok {
		return Identity{}, errors.New("invalid token")
	}
	return id, nil
}

func (a *fakeAuth) add(token string, id Identity) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tokens[token] = id
}
