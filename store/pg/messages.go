package pg

import (
	"context"
	"time"

	"github.com/chatctl/chatctl/store"
)

// messages is the group committer (TODO(helper)).
type messages struct{}

func (m *messages) start(db *DB) {}
func (m *messages) stop()        {}

func (db *DB) SetRetention(r store.Retention) {}
func (db *DB) AppendMessage(ctx context.Context, room, from, text string, ts time.Time) (store.Message, error) {
	return store.Message{}, errNotYet
}
func (db *DB) MessagesAfter(room string, after uint64, limit int) ([]store.Message, error) {
	return nil, errNotYet
}
func (db *DB) MessagesBefore(room string, before uint64, limit int) ([]store.Message, error) {
	return nil, errNotYet
}
func (db *DB) RoomEpoch(room string) (string, error)           { return "", errNotYet }
func (db *DB) Rooms() ([]store.Room, error)                    { return nil, errNotYet }
func (db *DB) DeleteRoom(name string) error                    { return errNotYet }
func (db *DB) PruneMessages(maxAge time.Duration) (int, error) { return 0, errNotYet }
