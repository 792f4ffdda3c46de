package jobs

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

// DefaultQueueRefresh is how old the queue figures in a status comment may
// be: how often, at most, the worker reads the cycle consumers' pending counts
// and the runners online.
const DefaultQueueRefresh = time.Second

// queueReadTimeout bounds one read of the queue figures.
const queueReadTimeout = 2 * time.Second

// queueCache holds what a queued job's status shows besides the job itself:
// how many cycles wait for each GPU count and which runners are online. It is
// shared by all of a worker's commands and read again from JetStream at most
// once per refresh for each GPU count (one consumer-info request) and for
// the fleet (one listing of bus.RunnerBucket), never once per command: the
// JetStream API answers such requests one at a time, so a request per command
// would bound the whole worker's rate. The figures are as of the last read.
type queueCache struct {
	res     *bus.Resources
	refresh time.Duration

	mu      sync.Mutex
	pending map[int]stamped[int]
	fleet   stamped[[]bus.Presence]
}

type stamped[T any] struct {
	v  T
	at time.Time // zero: never read
	ok bool      // the last read succeeded
}

func (s stamped[T]) fresh(now time.Time, ttl time.Duration) bool {
	return !s.at.IsZero() && now.Sub(s.at) < ttl
}

func newQueueCache(res *bus.Resources, refresh time.Duration) *queueCache {
	return &queueCache{res: res, refresh: refresh, pending: map[int]stamped[int]{}}
}

// Pending is the number of cycles waiting for gpus GPUs and not yet handed to
// a runner; ok is false when it could not be read.
func (q *queueCache) Pending(ctx context.Context, gpus int) (n int, ok bool) {
	if q == nil || q.res == nil || q.res.Cycles == nil {
		return 0, false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	now := time.Now()
	if s := q.pending[gpus]; s.fresh(now, q.refresh) {
		return s.v, s.ok
	}
	ctx, cancel := context.WithTimeout(ctx, queueReadTimeout)
	defer cancel()
	s := stamped[int]{at: now}
	// Consumer fetches the consumer's info: one request, the count included.
	cons, err := q.res.Cycles.Consumer(ctx, bus.ConsumerName(gpus))
	if err != nil {
		zerolog.Ctx(ctx).Debug().Err(err).Int("gpus", gpus).Msg("Reading the cycle queue")
	} else {
		s.v, s.ok = int(cons.CachedInfo().NumPending), true
	}
	q.pending[gpus] = s
	return s.v, s.ok
}

// Fleet is the runners online, as their presence entries say; ok is false
// when they could not be read.
func (q *queueCache) Fleet(ctx context.Context) (fleet []bus.Presence, ok bool) {
	if q == nil || q.res == nil || q.res.Runners == nil {
		return nil, false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	now := time.Now()
	if q.fleet.fresh(now, q.refresh) {
		return q.fleet.v, q.fleet.ok
	}
	ctx, cancel := context.WithTimeout(ctx, queueReadTimeout)
	defer cancel()
	fleet, err := readFleet(ctx, q.res.Runners)
	if err != nil {
		zerolog.Ctx(ctx).Debug().Err(err).Msg("Reading the runners online")
	}
	q.fleet = stamped[[]bus.Presence]{v: fleet, at: now, ok: err == nil}
	return q.fleet.v, q.fleet.ok
}

// readFleet reads every presence entry of bus.RunnerBucket.
func readFleet(ctx context.Context, kv jetstream.KeyValue) ([]bus.Presence, error) {
	lister, err := kv.ListKeys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", bus.RunnerBucket, err)
	}
	defer func() { _ = lister.Stop() }()
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	var fleet []bus.Presence
	for _, k := range keys {
		e, err := kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			continue // gone meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("get %s %s: %w", bus.RunnerBucket, k, err)
		}
		var p bus.Presence
		if json.Unmarshal(e.Value(), &p) != nil {
			continue
		}
		fleet = append(fleet, p)
	}
	return fleet, nil
}

// queued is what the status of a queued job adds to the job: its place in the
// queue for its GPU count (1 = next; 0 = unknown) and why it waits ("" when
// unknown).
type queued struct {
	Position int
	Reason   string
}

// queueOf reads j's queue figures; a job that is not queued has none. A
// queued job whose cycle is out counts itself, so its position is at least 1.
func (w *Worker) queueOf(ctx context.Context, j *bus.Job) queued {
	if j.Status != bus.StatusQueued || j.GPUs <= 0 {
		return queued{}
	}
	var q queued
	if n, ok := w.queue.Pending(ctx, j.GPUs); ok {
		q.Position = max(n, 1)
	}
	if fleet, ok := w.queue.Fleet(ctx); ok {
		q.Reason = bus.WaitReason(j.GPUs, fleet)
	}
	return q
}
