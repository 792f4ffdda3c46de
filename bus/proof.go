package bus

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
)

// NewLeaseProof makes the secret a runner keeps in memory while it holds a
// lease, and the hash it stores in the lease (Lease.ProofSHA256). Runners can
// read each other's leases, so a runner's name proves nothing; the secret does.
func NewLeaseProof() (secret, hash string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	secret = hex.EncodeToString(b)
	return secret, proofHash(secret)
}

// LeaseProven reports whether secret is the one whose hash l holds.
func LeaseProven(l Lease, secret string) bool {
	if l.ProofSHA256 == "" || secret == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(proofHash(secret)), []byte(l.ProofSHA256)) == 1
}

func proofHash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}
