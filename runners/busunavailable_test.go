package runners

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestBusUnavailable: NATS not answering gives a cycle back; the workflow's
// own failures, deadlines among them, still fail it.
func TestBusUnavailable(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"token broker absent", fmt.Errorf("phase e2e: ask server for a token for o.r.1: %w", nats.ErrNoResponders), true},
		{"token broker silent", fmt.Errorf("phase e2e: ask server for a token for o.r.1: %w: %w", nats.ErrTimeout, context.DeadlineExceeded), true},
		{"stream electing a leader", fmt.Errorf("record phase e2e: update job o.r.1: %w", jetstream.ErrNoStreamResponse), true},
		{"reconnecting", fmt.Errorf("record phase e2e: %w", nats.ErrConnectionReconnecting), true},
		{"a step timed out", fmt.Errorf("phase e2e: build_and_run_ad.py: %w", context.DeadlineExceeded), false},
		{"a step failed", errors.New("phase e2e: build_and_run_ad.py exited 1"), false},
		{"lease lost", fmt.Errorf("record phase e2e: %w", ErrLeaseLost), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := busUnavailable(tc.err); got != tc.want {
				t.Errorf("busUnavailable(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
