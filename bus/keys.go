package bus

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// Keys and subjects made from outside input.
//
// A NATS client sends a KV key inside the subject of its request, on one
// protocol line of at most 4,096 bytes: a key longer than that drops the
// connection (and with it every consumer on it), and characters such as
// spaces, '*' or '>' make another subject altogether. Every key adbot derives
// from a webhook (a repository's owner and name, a delivery id) goes through
// Token, which keeps a GitHub-shaped value as it is (so the keys of existing
// jobs and deliveries do not change) and turns anything else into a bounded
// digest of it.

// MaxTokenLen bounds a value kept as it is in a key: GitHub's longest names
// (a repository: 100 characters) and ids fit.
const MaxTokenLen = 128

// hashPrefix starts a token that stands for a digest. GitHub allows no '='
// in an owner, a repository name or a delivery GUID, so no kept value starts
// with it.
const hashPrefix = "=h"

// Token returns s as one KV key token, or, when s is empty, longer than
// MaxTokenLen or holds a character outside [A-Za-z0-9_-] (or '.' where
// dots is set, for a repository name), "=h" and the first 32 hex digits of
// its SHA-256. The result is at most MaxTokenLen bytes, never empty, and
// safe in a NATS subject and a KV key.
func Token(s string, dots bool) string {
	if TokenOK(s, dots) {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return hashPrefix + hex.EncodeToString(sum[:16])
}

// TokenOK reports whether Token keeps s as it is.
func TokenOK(s string, dots bool) bool {
	if s == "" || len(s) > MaxTokenLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		case c == '.' && dots:
		default:
			return false
		}
	}
	return true
}

// JobKey is the KV key of the job for an issue: <owner>.<repo>.<issue>.
//
// A KV key may not hold an empty token, so a repository name that starts or
// ends with a dot or holds two in a row (".github", the usual home of an
// organization's community files) has each of its dots written as dotEscape;
// GitHub allows no '=' in a name, so ParseJobKey can undo it. Every other
// GitHub-shaped name is kept as it is, so the keys of existing jobs do not
// change; a name GitHub could not have sent (too long, odd characters) is
// replaced by its digest (Token), which ParseJobKey cannot undo.
func JobKey(owner, repo string, issue int) string {
	owner, repo = Token(owner, false), Token(repo, true)
	if strings.HasPrefix(repo, ".") || strings.HasSuffix(repo, ".") || strings.Contains(repo, "..") {
		repo = strings.ReplaceAll(repo, ".", dotEscape)
	}
	return owner + "." + repo + "." + strconv.Itoa(issue)
}

// dotEscape stands for a dot in the repository part of a job key that could
// not hold it as is (see JobKey).
const dotEscape = "=2E"

// MaxJobKeyLen bounds a key JobKey makes.
const MaxJobKeyLen = 2*MaxTokenLen + len(".") + len(dotEscape)*MaxTokenLen + 24

// ValidJobKey reports whether key has the shape JobKey gives: bounded, and
// made only of characters a KV key allows. A key that comes from a peer (a
// runner's token request) is checked with it before it is used.
func ValidJobKey(key string) bool {
	if len(key) > MaxJobKeyLen {
		return false
	}
	_, _, _, err := ParseJobKey(key)
	if err != nil {
		return false
	}
	for _, tok := range strings.Split(key, ".") {
		if !TokenOK(strings.ReplaceAll(tok, "=", "-"), false) {
			return false
		}
	}
	return true
}

// ParseJobKey splits a key made by JobKey. Repository names may hold dots, owner
// names may not, so the owner ends at the first dot and the issue starts after the last.
func ParseJobKey(key string) (owner, repo string, issue int, err error) {
	first := strings.IndexByte(key, '.')
	last := strings.LastIndexByte(key, '.')
	if first <= 0 || last <= first+1 {
		return "", "", 0, fmt.Errorf("parse job key %q: want <owner>.<repo>.<issue>", clipKey(key))
	}
	issue, err = strconv.Atoi(key[last+1:])
	if err != nil || issue <= 0 {
		return "", "", 0, fmt.Errorf("parse job key %q: issue is not a positive number", clipKey(key))
	}
	return key[:first], strings.ReplaceAll(key[first+1:last], dotEscape, "."), issue, nil
}

// DeliveryKey is the key in DeliveryBucket of the webhook delivery with GUID
// id (X-GitHub-Delivery): "delivery." and Token(id). The command worker
// records each delivery it carries out under it; the redelivery sweeper
// skips a failed delivery that has a record.
func DeliveryKey(id string) string { return "delivery." + Token(id, false) }

// MsgID bounds a JetStream message id made from outside input (a delivery
// id): Token of it.
func MsgID(id string) string { return Token(id, false) }

// clipKey bounds a key quoted in an error.
func clipKey(k string) string {
	if len(k) <= MaxTokenLen {
		return k
	}
	return k[:MaxTokenLen] + "…"
}
