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
// which jobs wait for each GPU count, in queue order, and which runners are
// online. It is shared by all of a worker's commands and read again from
// JetStream at most once per refresh for each GPU count (a walk over the
// cycles not yet done, see Waiting) and for the fleet (one listing of
// bus.RunnerBucket), never once per command: the JetStream API answers such
// requests one at a time, so reading per command would bound the whole
// worker's rate. The figures are as of the last read.
type queueCache struct {
	res     *bus.Resources
	refresh time.Duration

	mu      sync.Mutex
	waiting map[int]stamped[WaitList]
	// reading holds, for a GPU count whose list is being read, a channel
	// closed when the read ends.
	reading map[int]chan struct{}
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
	return &queueCache{res: res, refresh: refresh, waiting: map[int]stamped[WaitList]{}, reading: map[int]chan struct{}{}}
}

// MaxQueueScan bounds the cycles one read of a GPU count's queue looks at
// (a request each); past it the list is incomplete and positions beyond it
// are unknown.
const MaxQueueScan = 256

// WaitList is the jobs whose cycles wait for one GPU count, oldest first.
type WaitList struct {
	// Jobs are the waiting jobs' keys in queue order.
	Jobs []WaitingCycle
	// Complete is false when the walk stopped at MaxQueueScan.
	Complete bool
}

// WaitingCycle is one cycle that waits for a runner.
type WaitingCycle struct {
	Job      string
	Cycle    int
	Enqueued time.Time
}

// Waiting reads the cycles on gpus's subject that no runner has finished,
// oldest first, and keeps those whose job still waits for them: the job is
// queued and the cycle is its newest. A cancelled job's cycle, or a cycle
// that a newer one of its job replaced, stays on the stream until a runner
// drops it, but nobody waits behind it, so it is not counted.
func Waiting(ctx context.Context, res *bus.Resources, gpus int) (WaitList, error) {
	cons, err := res.Cycles.Consumer(ctx, bus.ConsumerName(gpus))
	if err != nil {
		return WaitList{}, fmt.Errorf("consumer %s: %w", bus.ConsumerName(gpus), err)
	}
	subj := bus.CycleSubject(gpus)
	// The stream is a work queue: a finished cycle is deleted, so from the
	// ack floor on every message of the subject is waiting or being worked
	// on. A work queue takes no second consumer on the subject, so they are
	// read one direct get at a time ("the next message of subj from seq").
	seq := cons.CachedInfo().AckFloor.Stream + 1
	wl := WaitList{Complete: true}
	jobs := map[string]*bus.Job{}
	for n := 0; ; n++ {
		if n == MaxQueueScan {
			wl.Complete = false
			break
		}
		m, err := res.Cycles.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subj))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return WaitList{}, fmt.Errorf("read %s from %d: %w", subj, seq, err)
		}
		seq = m.Sequence + 1
		var c bus.Cycle
		if json.Unmarshal(m.Data, &c) != nil || c.JobKey == "" {
			continue
		}
		j, seen := jobs[c.JobKey]
		if !seen {
			j, _, err = bus.GetJob(ctx, res.Jobs, c.JobKey)
			if errors.Is(err, bus.ErrNoJob) {
				j = nil
			} else if err != nil {
				return WaitList{}, fmt.Errorf("job %s: %w", c.JobKey, err)
			}
			jobs[c.JobKey] = j
		}
		if j == nil || j.Status != bus.StatusQueued || j.Cycle != c.Number {
			continue
		}
		wl.Jobs = append(wl.Jobs, WaitingCycle{Job: c.JobKey, Cycle: c.Number, Enqueued: c.Enqueued})
	}
	return wl, nil
}

// list returns the waiting list for gpus, from the cache while it is fresh.
// One caller at a time reads it again when it is stale; meanwhile the others
// get the last list at once rather than queue behind the walk (a command's
// status comment must not wait on it), and only when there is no list yet do
// they wait for the one being read.
func (q *queueCache) list(ctx context.Context, gpus int) (WaitList, bool) {
	if q == nil || q.res == nil || q.res.Cycles == nil || q.res.Jobs == nil {
		return WaitList{}, false
	}
	q.mu.Lock()
	s := q.waiting[gpus]
	if s.fresh(time.Now(), q.refresh) {
		q.mu.Unlock()
		return s.v, s.ok
	}
	if done, busy := q.reading[gpus]; busy {
		q.mu.Unlock()
		if !s.at.IsZero() {
			return s.v, s.ok
		}
		select {
		case <-done:
		case <-ctx.Done():
			return WaitList{}, false
		}
		q.mu.Lock()
		s = q.waiting[gpus]
		q.mu.Unlock()
		return s.v, s.ok
	}
	done := make(chan struct{})
	q.reading[gpus] = done
	q.mu.Unlock()

	rctx, cancel := context.WithTimeout(ctx, queueReadTimeout)
	defer cancel()
	s = stamped[WaitList]{at: time.Now()}
	wl, err := Waiting(rctx, q.res, gpus)
	if err != nil {
		zerolog.Ctx(ctx).Debug().Err(err).Int("gpus", gpus).Msg("Reading the cycle queue")
	} else {
		s.v, s.ok = wl, true
	}
	q.mu.Lock()
	q.waiting[gpus] = s
	delete(q.reading, gpus)
	q.mu.Unlock()
	close(done)
	return s.v, s.ok
}

// Pending is the number of jobs waiting for gpus GPUs; ok is false when it
// could not be read.
func (q *queueCache) Pending(ctx context.Context, gpus int) (n int, ok bool) {
	wl, ok := q.list(ctx, gpus)
	return len(wl.Jobs), ok
}

// Position is key's place among the jobs waiting for gpus GPUs: 1 + the
// waiting jobs ahead of it. A job not on the list (its cycle is newer than
// the last read) comes after everyone on it. ok is false when the queue
// could not be read, or the job lies past an incomplete list.
func (q *queueCache) Position(ctx context.Context, gpus int, key string) (pos int, ok bool) {
	wl, ok := q.list(ctx, gpus)
	if !ok {
		return 0, false
	}
	for i, c := range wl.Jobs {
		if c.Job == key {
			return i + 1, true
		}
	}
	if !wl.Complete {
		return 0, false
	}
	return len(wl.Jobs) + 1, true
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

// queueOf reads j's queue figures; a job that is not queued has none. Its
// position counts only the jobs that wait ahead of it (see Waiting), plus
// itself: later jobs, cancelled ones and replaced cycles do not move it.
func (w *Worker) queueOf(ctx context.Context, j *bus.Job) queued {
	if j.Status != bus.StatusQueued || j.GPUs <= 0 {
		return queued{}
	}
	var q queued
	if n, ok := w.queue.Position(ctx, j.GPUs, j.Key); ok {
		q.Position = n
	}
	if fleet, ok := w.queue.Fleet(ctx); ok {
		q.Reason = bus.WaitReason(j.GPUs, fleet)
	}
	return q
}
