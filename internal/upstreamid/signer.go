// Package upstreamid owns the identity the gateway asserts to upstream
// servers: short-lived JWTs it mints, identity headers, and the signing keys
// behind them, published as a JWKS.
package upstreamid

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

const (
	// MaxTTL is the longest lifetime of a minted token.
	MaxTTL = 5 * time.Minute
	// checkInterval is how often, at most, the key file is looked at.
	checkInterval = 5 * time.Second
	// retireGrace keeps a replaced key published past the expiry of its
	// last possible token, for verifiers that allow clock skew.
	retireGrace = time.Minute
)

// Signer signs tokens with the private key in one PEM file and publishes
// the public keys as a JWKS. When the file is replaced (its modification
// time, size or inode changes; looked at no more than every 5s, when the
// signer is used) the new key signs from then on, and the old one stays
// in the JWKS until every token it signed has expired. A key file that
// fails to load leaves the current key in use. Replace the file atomically
// (write a new file, rename it over the old one), as Kubernetes does for
// mounted secrets.
type Signer struct {
	path   string
	logger *slog.Logger

	state     atomic.Pointer[keyState]
	nextCheck atomic.Int64 // unix nanoseconds; the file is not looked at before

	reloadMu sync.Mutex // serializes reloads; guards the fields below
	stamp    fileStamp  // of the file the current key came from
	sum      [sha256.Size]byte
	failed   fileStamp // of the last file that failed to load, logged once
	failMsg  string

	cache tokenCache
}

// keyState is the keys in use, immutable once published.
type keyState struct {
	current *signingKey
	retired []retiredKey // newest first
	jwks    []byte
	pruneAt time.Time // when the first retired key expires; zero if none
}

type retiredKey struct {
	key   *signingKey
	until time.Time
}

// fileStamp is what a stat says about the key file.
type fileStamp struct {
	info os.FileInfo
}

func (a fileStamp) same(b os.FileInfo) bool {
	return a.info != nil && b != nil && os.SameFile(a.info, b) &&
		a.info.ModTime().Equal(b.ModTime()) && a.info.Size() == b.Size()
}

// NewSigner loads the private key at path: EC P-256 (ES256), RSA of at
// least 2048 bits (RS256) or Ed25519 (EdDSA), PEM in PKCS#8, SEC1 or
// PKCS#1 form.
func NewSigner(path string, logger *slog.Logger) (*Signer, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Signer{path: path, logger: logger}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	k, err := loadKey(data)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	s.stamp, s.sum = fileStamp{fi}, sha256.Sum256(data)
	s.state.Store(newKeyState(k, nil))
	s.nextCheck.Store(time.Now().Add(checkInterval).UnixNano())
	return s, nil
}

func newKeyState(current *signingKey, retired []retiredKey) *keyState {
	st := &keyState{current: current, retired: retired}
	keys := []jose.JSONWebKey{current.public}
	for _, r := range retired {
		keys = append(keys, r.key.public)
		if st.pruneAt.IsZero() || r.until.Before(st.pruneAt) {
			st.pruneAt = r.until
		}
	}
	// Public keys only: marshaling them cannot fail.
	st.jwks, _ = json.Marshal(jose.JSONWebKeySet{Keys: keys})
	return st
}

// KeyID returns the kid of the key that signs now.
func (s *Signer) KeyID() string {
	s.maybeReload()
	return s.state.Load().current.kid
}

// JWKS returns the JSON Web Key Set verifiers use: the public key that
// signs now and the replaced ones whose tokens may still be valid. It
// never holds a private parameter.
func (s *Signer) JWKS() []byte {
	s.maybeReload()
	st := s.state.Load()
	if !st.pruneAt.IsZero() && !time.Now().Before(st.pruneAt) {
		st = s.prune()
	}
	return bytes.Clone(st.jwks)
}

// prune drops the retired keys whose tokens have all expired.
func (s *Signer) prune() *keyState {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	st := s.state.Load()
	now := time.Now()
	var keep []retiredKey
	for _, r := range st.retired {
		if now.Before(r.until) {
			keep = append(keep, r)
		}
	}
	if len(keep) == len(st.retired) {
		return st
	}
	st = newKeyState(st.current, keep)
	s.state.Store(st)
	return st
}

// maybeReload looks at the key file if checkInterval has passed since the
// last look; one caller does, the others go on with the current key.
func (s *Signer) maybeReload() {
	now := time.Now().UnixNano()
	next := s.nextCheck.Load()
	if now < next || !s.nextCheck.CompareAndSwap(next, now+int64(checkInterval)) {
		return
	}
	s.reload()
}

// reload loads the key file if it changed, and rotates to its key.
func (s *Signer) reload() {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	fi, err := os.Stat(s.path)
	if err != nil {
		s.loadFailed(nil, err)
		return
	}
	if s.stamp.same(fi) {
		return
	}
	data, err := os.ReadFile(s.path)
	if err != nil {
		s.loadFailed(fi, err)
		return
	}
	sum := sha256.Sum256(data)
	if sum == s.sum {
		s.stamp = fileStamp{fi}
		return
	}
	k, err := loadKey(data)
	if err != nil {
		s.loadFailed(fi, err)
		return
	}
	s.stamp, s.sum, s.failed, s.failMsg = fileStamp{fi}, sum, fileStamp{}, ""
	old := s.state.Load()
	if k.kid == old.current.kid {
		return // the same key, rewritten
	}
	now := time.Now()
	retired := []retiredKey{{key: old.current, until: now.Add(MaxTTL + retireGrace)}}
	for _, r := range old.retired {
		if now.Before(r.until) && r.key.kid != k.kid {
			retired = append(retired, r)
		}
	}
	s.state.Store(newKeyState(k, retired))
	s.cache.clear()
	s.logger.Info("upstream identity signing key rotated", "key_id", k.kid, "previous_key_id", old.current.kid, "algorithm", string(k.alg))
}

// loadFailed logs a key file that cannot be loaded, once per version of
// the file; the current key stays in use.
func (s *Signer) loadFailed(fi os.FileInfo, err error) {
	msg := err.Error()
	if msg == s.failMsg && (fi == nil && s.failed.info == nil || s.failed.same(fi)) {
		return
	}
	s.failed, s.failMsg = fileStamp{fi}, msg
	s.logger.Warn("upstream identity signing key not reloaded; the current key stays in use", "path", s.path, "error", err)
}
