package runners

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/runners/proc"
)

// tokenRefreshBefore is how long before its expiry a token is replaced.
const tokenRefreshBefore = 5 * time.Minute

// ErrTokenRefused wraps the server's reason for refusing a token.
var ErrTokenRefused = errors.New("token refused")

// tokenSource asks the server for installation tokens for one job, keeping
// them in memory only, one per permission set, until shortly before expiry.
type tokenSource struct {
	nc     *nats.Conn
	job    string
	runner string
	proof  string // the lease's secret (bus.NewLeaseProof)
	redact *proc.Redactor

	mu     sync.Mutex
	tokens map[string]bus.TokenReply
}

func permKey(p map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(p)) {
		b.WriteString(k + "=" + p[k] + ";")
	}
	return b.String()
}

func (s *tokenSource) token(ctx context.Context, perms map[string]string) (string, error) {
	k := permKey(perms)
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.tokens[k]; ok && (t.Expires.IsZero() || time.Until(t.Expires) > tokenRefreshBefore) {
		return t.Token, nil
	}
	b, err := json.Marshal(bus.TokenRequest{JobKey: s.job, Runner: s.runner, Proof: s.proof, Permissions: perms})
	if err != nil {
		return "", fmt.Errorf("encode token request: %w", err)
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	m, err := s.nc.RequestWithContext(rctx, bus.TokenSubject, b)
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			// The server did not answer in time (reconnecting after losing
			// its node, say): say so as NATS does, for busUnavailable.
			err = fmt.Errorf("%w: %w", nats.ErrTimeout, err)
		}
		return "", fmt.Errorf("ask server for a token for %s: %w", s.job, err)
	}
	var rep bus.TokenReply
	if err := json.Unmarshal(m.Data, &rep); err != nil {
		return "", fmt.Errorf("decode token reply for %s: %w", s.job, err)
	}
	if rep.Error != "" || rep.Token == "" {
		return "", fmt.Errorf("token for %s: %w: %s", s.job, ErrTokenRefused, rep.Error)
	}
	s.redact.Add(rep.Token)
	if s.tokens == nil {
		s.tokens = map[string]bus.TokenReply{}
	}
	s.tokens[k] = rep
	return rep.Token, nil
}
