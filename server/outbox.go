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

// DefaultOutboxGrace is how long a cycle staged in a job's outbox is left to
// whoever staged it before the outbox relay publishes it.
const DefaultOutboxGrace = 2 * time.Second

// DefaultOutboxRewatch is how long the outbox relay waits before watching the
// job bucket again after its watch broke or a publish failed.
const DefaultOutboxRewatch = 2 * time.Second

// relayOutboxes publishes the cycle a job holds in its outbox: a runner that
// ends a cycle while review feedback waited stages the next one there
// (bus.EndCycle), and runners' NATS user may not publish cycles
// (deploy/nats-cluster.conf). It watches the job bucket, whose current values
// come first, so a cycle staged while no server ran goes out too. Should the
// relay and the stager both publish a cycle, JetStream stores it once (same
// Nats-Msg-Id).
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

// watchOutboxes relays until ctx ends (nil) or the watch, a read or a
// publish fails. A staged cycle is left DefaultOutboxGrace to whoever staged
// it (the command worker publishes its own at once) before the relay
// publishes it.
func (s *Server) watchOutboxes(ctx context.Context) error {
	w, err := s.res.Jobs.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch %s: %w", bus.JobBucket, err)
	}
	defer func() { _ = w.Stop() }()
	type staged struct {
		cycle int
		since time.Time
	}
	pending := map[string]staged{} // by job key
	tick := time.NewTicker(DefaultOutboxGrace / 4)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return fmt.Errorf("watch %s: %w", bus.JobBucket, errors.New("ended"))
			}
			if e == nil || strings.HasPrefix(e.Key(), "_") {
				continue // end of the current values, or an index entry
			}
			var j bus.Job
			if e.Operation() != jetstream.KeyValuePut || json.Unmarshal(e.Value(), &j) != nil || j.Outbox == nil || j.Status != bus.StatusQueued {
				delete(pending, e.Key())
				continue
			}
			if p, ok := pending[e.Key()]; !ok || p.cycle != j.Outbox.Number {
				pending[e.Key()] = staged{j.Outbox.Number, time.Now()}
			}
		case now := <-tick.C:
			for key, p := range pending {
				if now.Sub(p.since) < DefaultOutboxGrace {
					continue
				}
				j, _, err := bus.GetJob(ctx, s.res.Jobs, key)
				if errors.Is(err, bus.ErrNoJob) {
					delete(pending, key)
					continue
				} else if err != nil {
					return err
				}
				if j.Outbox != nil && j.Outbox.Number == p.cycle && j.Status == bus.StatusQueued {
					if _, err := bus.FlushOutbox(ctx, s.res, j); err != nil {
						return fmt.Errorf("publish cycle %s staged by job %s: %w", j.Outbox.MsgID(), key, err)
					}
				}
				delete(pending, key)
			}
		}
	}
}
