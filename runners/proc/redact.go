package proc

import (
	"bytes"
	"slices"
	"sync"
)

// Redacted replaces every secret in output that leaves the host.
const Redacted = "[REDACTED]"

// MinSecretLen is the shortest value Redactor replaces: shorter ones would
// blank out ordinary words.
const MinSecretLen = 6

// Redactor replaces known secrets in text. Secrets may be added at any time
// (a token fetched mid-cycle); it is safe for concurrent use.
type Redactor struct {
	mu      sync.RWMutex
	secrets [][]byte
}

// NewRedactor returns a Redactor for the given secrets.
func NewRedactor(secrets ...string) *Redactor {
	r := &Redactor{}
	for _, s := range secrets {
		r.Add(s)
	}
	return r
}

// Add makes r replace secret from now on. Values shorter than MinSecretLen are ignored.
func (r *Redactor) Add(secret string) {
	if len(secret) < MinSecretLen {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.secrets {
		if string(s) == secret {
			return
		}
	}
	r.secrets = append(r.secrets, []byte(secret))
	// Longest first, so a secret that contains another is replaced whole.
	slices.SortFunc(r.secrets, func(a, b []byte) int { return len(b) - len(a) })
}

// Bytes returns b with every secret replaced; b itself is not changed.
func (r *Redactor) Bytes(b []byte) []byte {
	if r == nil {
		return b
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, s := range r.secrets {
		if bytes.Contains(b, s) {
			b = bytes.ReplaceAll(b, s, []byte(Redacted))
		}
	}
	return b
}

// maxLen is the length of the longest secret (0 for none or a nil r).
func (r *Redactor) maxLen() int {
	if r == nil {
		return 0
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if len(r.secrets) == 0 {
		return 0
	}
	return len(r.secrets[0]) // sorted longest first
}

// String returns s with every secret replaced.
func (r *Redactor) String(s string) string { return string(r.Bytes([]byte(s))) }
