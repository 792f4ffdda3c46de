package runners

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/nvidia/adbot/bus"
)

// ErrLeaseLost says another runner now holds the job: this one must stop.
var ErrLeaseLost = errors.New("lease on the job lost")

// keepAlive renews the lease and tells JetStream the cycle is in progress
// until ctx ends; losing the lease cancels ctx with ErrLeaseLost.
func (r *Runner) keepAlive(ctx context.Context, cancel context.CancelCauseFunc, msg jetstream.Msg, l *lease, ackWait time.Duration) {
	every := min(r.leaseTTL, ackWait) / 4
	t := time.NewTicker(every)
	defer t.Stop()
	renewed := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := msg.InProgress(); err != nil {
			zerolog.Ctx(ctx).Warn().Err(err).Msg("in progress")
		}
		if j, _, err := bus.GetJob(ctx, r.res.Jobs, l.key); err == nil && j.Status.Terminal() {
			zerolog.Ctx(ctx).Info().Str("status", string(j.Status)).Msg("job ended while its cycle ran: stopping it")
			cancel(fmt.Errorf("job %s is %s: %w", l.key, j.Status, bus.ErrJobEnded))
			return
		}
		err := l.renew(ctx)
		if err == nil {
			renewed = time.Now()
			continue
		}
		if ctx.Err() != nil {
			return
		}
		// A revision mismatch means someone else wrote the lease (ours had
		// expired); any other error may pass, until the TTL is spent.
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || time.Since(renewed) >= r.leaseTTL {
			zerolog.Ctx(ctx).Error().Err(err).Msg("lease lost")
			cancel(fmt.Errorf("%w: %v", ErrLeaseLost, err))
			return
		}
		zerolog.Ctx(ctx).Warn().Err(err).Msg("renew lease: will retry")
	}
}

// watchJob stops the cycle (cancels ctx with bus.ErrJobEnded) the moment the
// job's record turns terminal, e.g. on /onboard cancel, so a running step is
// not left to finish its work. keepAlive's periodic look stays as the fallback
// should the watch break.
func (r *Runner) watchJob(ctx context.Context, cancel context.CancelCauseFunc, key string) {
	w, err := r.res.Jobs.Watch(ctx, key, jetstream.UpdatesOnly())
	if err != nil {
		if ctx.Err() == nil {
			zerolog.Ctx(ctx).Warn().Err(err).Msg("watch job: cancellation is noticed at the next lease renewal instead")
		}
		return
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			var j bus.Job
			if json.Unmarshal(e.Value(), &j) != nil || !j.Status.Terminal() {
				continue
			}
			zerolog.Ctx(ctx).Info().Str("status", string(j.Status)).Msg("job ended while its cycle ran: stopping it")
			cancel(fmt.Errorf("job %s is %s: %w", key, j.Status, bus.ErrJobEnded))
			return
		}
	}
}

// lease is this runner's hold on a job in LeaseBucket.
type lease struct {
	kv    jetstream.KeyValue
	key   string
	value bus.Lease
	// proof is the secret whose hash value holds: the token broker's proof
	// that this runner holds the lease. Memory only.
	proof string
	mu    sync.Mutex
	rev   uint64
}

var errLeaseHeld = errors.New("another runner holds the job's lease")

func (r *Runner) acquireLease(ctx context.Context, key string, cycle int, gpus []int) (*lease, error) {
	secret, hash := bus.NewLeaseProof()
	l := &lease{kv: r.res.Leases, key: key, proof: secret,
		value: bus.Lease{Runner: r.cfg.Name, Cycle: cycle, GPUs: gpus, Renewed: time.Now().UTC(), ProofSHA256: hash}}
	b, _ := json.Marshal(l.value)
	for range 3 {
		rev, err := l.kv.Create(ctx, key, b)
		if err == nil {
			l.rev = rev
			return l, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, fmt.Errorf("take lease on %s: %w", key, err)
		}
		e, err := l.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			continue // expired meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("read lease on %s: %w", key, err)
		}
		var held bus.Lease
		_ = json.Unmarshal(e.Value(), &held)
		if held.Runner != r.cfg.Name {
			return nil, fmt.Errorf("job %s: %w (%s, renewed %s)", key, errLeaseHeld, held.Runner, held.Renewed.Format(time.RFC3339))
		}
		// Our own lease from before a restart: take it over.
		if rev, err := l.kv.Update(ctx, key, b, e.Revision()); err == nil {
			l.rev = rev
			return l, nil
		}
	}
	return nil, fmt.Errorf("take lease on %s: lost the race three times", key)
}

func (l *lease) renew(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.value.Renewed = time.Now().UTC()
	b, _ := json.Marshal(l.value)
	rev, err := l.kv.Update(ctx, l.key, b, l.rev)
	if err != nil {
		return fmt.Errorf("renew lease on %s: %w", l.key, err)
	}
	l.rev = rev
	return nil
}

func (l *lease) release(ctx context.Context) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := l.kv.Delete(ctx, l.key, jetstream.LastRevision(l.rev)); err != nil {
		zerolog.Ctx(ctx).Debug().Err(err).Msg("release lease")
	}
}
