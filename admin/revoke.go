package admin

import (
	"context"
	"fmt"

	"github.com/chatctl/chatctl/store"
)

// Revocation names what a revoking operation just ended, so that the
// server can close the chat connections opened with it (SPEC §6: close
// 4003). Exactly one field is set.
type Revocation struct {
	// User: every token of the user (password changed, disabled, removed,
	// `token revoke --user NAME --all`).
	User string
	// JTI: one access token (`token revoke JTI`).
	JTI string
	// Session: every access token minted for the session (`token revoke
	// ses_…`, or a refresh token reused).
	Session string
	// Kid: every token signed with the key (`key retire KID`).
	Kid string
}

// OnRevoke sets the function every revoking method of s calls, after its
// change has committed: SetPassword, SetDisabled (disabling), RemoveUser,
// Revoke, Refresh (on reuse) and RetireKey. The server wires it to the
// chat hub; without it nothing is notified. Set it before s is shared: it
// is read without a lock by concurrent calls.
func (s *Service) OnRevoke(f func(Revocation)) { s.onRevoke.Store(&f) }

// revoked tells the OnRevoke function about r.
func (s *Service) revoked(r Revocation) {
	if f := s.onRevoke.Load(); f != nil && *f != nil {
		(*f)(r)
	}
}

// maxKidLen bounds the kids RetireKey looks up (ours have 8 to 12
// characters), so an error never echoes unbounded input.
const maxKidLen = 64

// RetireKey implements Admin.
func (s *Service) RetireKey(ctx context.Context, kid string) (k KeyInfo, err error) {
	defer func() { s.record(ctx, ActionKeyRetire, auditText(kid, maxKidLen), err, "") }()
	switch {
	case kid == "":
		return KeyInfo{}, fmt.Errorf("%w: give the kid of the key to retire (see key list)", ErrBadRequest)
	case len(kid) > maxKidLen:
		// Kids are short; a long one is not echoed back.
		return KeyInfo{}, fmt.Errorf("key: %w", store.ErrNotFound)
	}
	k, err = s.keys.retire(kid)
	if err != nil {
		return KeyInfo{}, err
	}
	s.revoked(Revocation{Kid: k.Kid})
	return k, nil
}

// ApplyChange acts on one change another process made to a shared store
// (store.Watcher: PostgreSQL), as the server's own admin calls do: it
// reloads the keys when one changed and reports the revocations to the
// OnRevoke function, so a `chatctl user disable` run against the
// database closes the user's sockets on this node. The store has already
// dropped what it cached of the change. Kinds it does not know are
// ignored.
func (s *Service) ApplyChange(kind, key string) { s.ApplyChangeTo(kind, key, s.revoked) }

// ApplyChangeTo is ApplyChange reporting the revocations to revoked
// instead of the OnRevoke function: a cluster node closes its own sockets
// for a change it read from the feed, without telling every other node
// again (each reads the feed too).
func (s *Service) ApplyChangeTo(kind, key string, revoked func(Revocation)) {
	switch kind {
	case store.ChangeUserRevoke:
		revoked(Revocation{User: key})
	case store.ChangeJTI:
		revoked(Revocation{JTI: key})
	case store.ChangeSession:
		revoked(Revocation{Session: key})
	case store.ChangeKey, store.ChangeReset:
		keys, err := s.keys.reload()
		if err != nil {
			return // the next change or an unknown kid reloads again
		}
		for _, k := range keys {
			if k.Kid == key && !k.RevokedAt.IsZero() {
				revoked(Revocation{Kid: key})
			}
		}
	}
}
