package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/nvidia/adbot/bus"
)

// DefaultOutboxRewatch is how long the outbox relay waits before watching the
// job bucket again after its watch broke or a publish failed.
const DefaultOutboxRewatch = 2 * time.Second

// relayOutboxes publishes the cycle a job holds in its outbox: a runner that
// ends a cycle while review feedback waited stages the next one there
// (bus.EndCycle), and runners' NATS user may not publish cycles
// (deploy/nats-cluster.conf). It watches the job bucket, whose current values
// come first, so a cycle staged while no server ran goes out too. A cycle the
// server published itself is published again at most once, and JetStream
// drops that copy (same Nats-Msg-Id).
func (s *Server) relayOutboxes(ctx context.Context) error {
	log := zerolog.Ctx(ctx).With().Str(LogKeyComponent, "outbox-relay").Logger()
	for {
		err := s.watchOutboxes(ctx)
		if ctx.Err() != nil {
			return nil
		}
		log.Warn().Err(err).Dur("retry_in", DefaultOutboxRewatch).Msg("relay staged cycles: watching the job bucket again")
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(DefaultOutboxRewatch):
		}
	}
}

// watchOutboxes relays until ctx ends (nil) or the watch or a publish fails.
func (s *Server) watchOutboxes(ctx context.Context) error {
	w, err := s.res.Jobs.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch %s: %w", bus.JobBucket, err)
	}
	defer func() { _ = w.Stop() }()
	for {
		var e jetstream.KeyValueEntry
		select {
		case <-ctx.Done():
			return nil
		case u, ok := <-w.Updates():
			if !ok {
				return fmt.Errorf("watch %s: %w", bus.JobBucket, errors.New("ended"))
			}
			e = u
		}
		if e == nil || e.Operation() != jetstream.KeyValuePut || strings.HasPrefix(e.Key(), "_") {
			continue // end of the current values, a deletion, or an index entry
		}
		var j bus.Job
		if err := json.Unmarshal(e.Value(), &j); err != nil || j.Outbox == nil || j.Status != bus.StatusQueued {
			continue
		}
		if _, err := bus.FlushOutbox(ctx, s.res, &j); err != nil {
			return fmt.Errorf("publish cycle %s staged by job %s: %w", j.Outbox.MsgID(), j.Key, err)
		}
	}
}
