package admin

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chatctl/chatctl/store"
)

// ErrKeyActive is returned by RetireKey for the key that signs new tokens:
// like Keycloak, chatctl always keeps one key that signs, so rotate first.
var ErrKeyActive = errors.New("cannot retire the active signing key")

// ErrExternalKey is returned by RotateKey and RetireKey when the signing
// secret comes from CHATCTL_JWT_SECRET or token.secret_file rather than the
// store.
var ErrExternalKey = errors.New("the signing secret is set by the operator")

// keyRing implements auth.Keys over the store's keys, or over one
// operator-supplied secret. It caches keys in memory so verification does
// not touch the store for them.
type keyRing struct {
	db  store.Store
	now func() time.Time

	external       []byte // operator secret; nil when keys come from the store
	externalKid    string
	externalSource string

	lastMiss atomic.Int64 // unix ns of the last reload for an unknown kid (see missed)

	mu   sync.RWMutex // guards keys
	keys []store.Key  // active first; loaded lazily
}

func newKeyRing(db store.Store, secret []byte, source string, now func() time.Time) *keyRing {
	r := &keyRing{db: db, now: now, external: secret, externalSource: source}
	if secret != nil {
		// A kid derived from the secret lets several servers sharing the
		// secret agree on it without configuration. It reveals nothing
		// useful: the secret has at least 256 bits.
		sum := sha256.Sum256(secret)
		r.externalKid = "ext-" + hex.EncodeToString(sum[:4])
	}
	return r
}

// load reads the store's keys, creating the first one when there is none.
func (r *keyRing) load() ([]store.Key, error) {
	r.mu.RLock()
	keys := r.keys
	r.mu.RUnlock()
	if keys != nil {
		return keys, nil
	}
	if r.db.ReadOnly() {
		// Nothing can be generated: the keys there are, maybe none.
		return r.reload()
	}
	if _, err := r.db.ActiveKey(); err != nil {
		return nil, err
	}
	return r.reload()
}

func (r *keyRing) reload() ([]store.Key, error) {
	keys, err := r.db.Keys()
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.keys = keys
	r.mu.Unlock()
	return keys, nil
}

// SigningKey implements auth.Keys.
func (r *keyRing) SigningKey(ttl time.Duration) (string, []byte, error) {
	if r.external != nil {
		return r.externalKid, r.external, nil
	}
	keys, err := r.load()
	if err != nil {
		return "", nil, err
	}
	if len(keys) == 0 || !keys[0].Active() {
		return "", nil, fmt.Errorf("%w: it has no signing key yet", store.ErrReadOnly)
	}
	k := keys[0]
	if ttl > k.MaxTTL {
		// Rare: only a longer lifetime than any before is written, so
		// that rotation keeps this key long enough.
		if err := r.db.NoteTTL(k.Kid, ttl); err != nil {
			return "", nil, err
		}
		if _, err := r.reload(); err != nil {
			return "", nil, err
		}
	}
	return k.Kid, k.Secret, nil
}

// VerifyKey implements auth.Keys.
func (r *keyRing) VerifyKey(kid string) ([]byte, bool) {
	if r.external != nil {
		return r.external, kid == r.externalKid
	}
	keys, err := r.load()
	if err != nil {
		return nil, false
	}
	now := r.now()
	for _, k := range keys {
		if k.Kid == kid && k.Verifies(now) {
			return k.Secret, true
		}
	}
	if _, shared := r.db.(store.Watcher); shared && r.missed(kid) {
		// Another process may have rotated a key the change feed has not
		// brought yet: look once more (at most once a second).
		if keys, err := r.reload(); err == nil {
			for _, k := range keys {
				if k.Kid == kid && k.Verifies(now) {
					return k.Secret, true
				}
			}
		}
	}
	return nil, false
}

// missed reports whether an unknown kid may reload the keys now: at most
// once per second, so tokens with made-up kids cannot hammer the store.
func (r *keyRing) missed(kid string) bool {
	if len(kid) > maxKidLen {
		return false
	}
	now := time.Now().UnixNano()
	last := r.lastMiss.Load()
	return now-last >= int64(time.Second) && r.lastMiss.CompareAndSwap(last, now)
}

// infos lists the keys for Keys.
func (r *keyRing) infos() ([]KeyInfo, error) {
	if r.external != nil {
		return []KeyInfo{{Kid: r.externalKid, Active: true, State: KeyActive, Source: r.externalSource}}, nil
	}
	if _, err := r.load(); err != nil {
		return nil, err
	}
	keys, err := r.reload()
	if err != nil {
		return nil, err
	}
	out := make([]KeyInfo, len(keys))
	for i, k := range keys {
		out[i] = keyInfo(k)
	}
	return out, nil
}

// keyInfo describes k for Keys.
func keyInfo(k store.Key) KeyInfo {
	in := KeyInfo{Kid: k.Kid, Active: k.Active(), State: KeyActive, Source: "store", CreatedAt: k.CreatedAt, RetiredAt: k.RetiredAt, Expires: k.Expires()}
	switch {
	case !k.RevokedAt.IsZero():
		in.State, in.Expires = KeyRetired, k.RevokedAt
	case !k.Active():
		in.State = KeyRotated
	}
	return in
}

// retire stops the rotated-out key kid verifying (store.RetireKey).
func (r *keyRing) retire(kid string) (KeyInfo, error) {
	if r.external != nil {
		return KeyInfo{}, fmt.Errorf("%w (%s): there is no other key to retire", ErrExternalKey, r.externalSource)
	}
	k, err := r.db.RetireKey(kid)
	if errors.Is(err, store.ErrKeyActive) {
		return KeyInfo{}, fmt.Errorf("%w: key %s signs new tokens; run `chatctl key rotate` first, then retire it", ErrKeyActive, kid)
	}
	if err != nil {
		return KeyInfo{}, err
	}
	if _, err := r.reload(); err != nil {
		return KeyInfo{}, err
	}
	return keyInfo(k), nil
}

// rotate retires the active key.
func (r *keyRing) rotate() (KeyInfo, error) {
	if r.external != nil {
		return KeyInfo{}, fmt.Errorf("%w (%s): change it there to rotate", ErrExternalKey, r.externalSource)
	}
	k, err := r.db.RotateKey()
	if err != nil {
		return KeyInfo{}, err
	}
	if _, err := r.reload(); err != nil {
		return KeyInfo{}, err
	}
	return keyInfo(k), nil
}

// maxTTL is the longest token lifetime any live key has signed, at least
// floor: no token still verifying can outlive it.
func (r *keyRing) maxTTL(floor time.Duration) time.Duration {
	longest := floor
	if r.external != nil {
		return max(longest, 30*24*time.Hour) // unknown: be generous
	}
	keys, err := r.load()
	if err != nil {
		return max(longest, 30*24*time.Hour)
	}
	for _, k := range keys {
		longest = max(longest, k.MaxTTL)
	}
	return longest
}
