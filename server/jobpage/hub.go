package jobpage

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/runners"
)

// Tuning values of the live view.
const (
	// DefaultMaxTails bounds the jobs whose output is kept; the one written
	// longest ago goes first.
	DefaultMaxTails = 256
	// DefaultMaxStreams bounds the open event streams (browser tabs).
	DefaultMaxStreams = 64
	// DefaultStreamBuffer is how many events may wait for one slow browser;
	// past it the stream is closed and the browser reconnects and catches up
	// from the tail.
	DefaultStreamBuffer = 512
)

// event is what the hub hands a stream: a job changed (or went), a tail
// began anew, or output arrived.
type event struct {
	key string
	// job is the job's new state; nil with gone when it was deleted.
	job  *bus.Job
	gone bool
	// reset says the job's tail began anew (gen); items follow in later events.
	reset string
	items []Item
}

// stream is one browser's subscription: key "" follows every job (the list),
// a job key follows that job and its output.
type stream struct {
	key string
	ch  chan event
	// closed is set (under the hub's lock) when ch has been closed.
	closed bool
}

// hub holds the jobs as the KV bucket last said, each job's output tail, and
// the open streams. Its methods are safe for concurrent use.
type hub struct {
	mu      sync.Mutex
	jobs    map[string]*bus.Job
	tails   map[string]*tail
	touched map[string]time.Time
	streams map[*stream]struct{}
	done    bool
	// synced is set once the watch has delivered every stored job.
	synced bool

	maxTails, maxStreams, buffer int
	newGen                       func() string
	now                          func() time.Time
}

func newHub() *hub {
	var n uint64
	var mu sync.Mutex
	start := strconv.FormatInt(time.Now().UnixNano(), 36)
	return &hub{
		jobs: map[string]*bus.Job{}, tails: map[string]*tail{}, touched: map[string]time.Time{},
		streams:  map[*stream]struct{}{},
		maxTails: DefaultMaxTails, maxStreams: DefaultMaxStreams, buffer: DefaultStreamBuffer,
		newGen: func() string {
			mu.Lock()
			defer mu.Unlock()
			n++
			return start + "x" + strconv.FormatUint(n, 36)
		},
		now: time.Now,
	}
}

// putJob records a job's new state (nil: deleted) and tells the streams.
func (h *hub) putJob(key string, j *bus.Job) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if j == nil {
		delete(h.jobs, key)
		delete(h.tails, key)
		delete(h.touched, key)
	} else {
		h.jobs[key] = j
	}
	h.sendLocked(event{key: key, job: j, gone: j == nil})
}

// markSynced records that every stored job has been read.
func (h *hub) markSynced() {
	h.mu.Lock()
	h.synced = true
	h.mu.Unlock()
}

// addChunk keeps a chunk of key's output and tells the job's streams. A
// chunk of an older cycle than the tail's is dropped; a newer cycle starts a
// new tail.
func (h *hub) addChunk(key string, c runners.LogChunk) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done {
		return
	}
	t := h.tails[key]
	if t != nil && c.Cycle < t.cycle {
		return
	}
	if t == nil || c.Cycle > t.cycle {
		if t == nil && len(h.tails) >= h.maxTails {
			h.evictLocked()
		}
		t = newTail(h.newGen(), c.Cycle)
		h.tails[key] = t
		h.sendLocked(event{key: key, reset: t.gen})
	}
	h.touched[key] = h.now()
	if items := t.add(c); len(items) > 0 {
		h.sendLocked(event{key: key, items: items})
	}
}

// evictLocked drops the tail written longest ago.
func (h *hub) evictLocked() {
	var oldest string
	var at time.Time
	for k := range h.tails {
		if ts := h.touched[k]; oldest == "" || ts.Before(at) {
			oldest, at = k, ts
		}
	}
	delete(h.tails, oldest)
	delete(h.touched, oldest)
}

// sendLocked hands ev to every stream that follows it. A stream whose buffer
// is full is closed: its browser reconnects and catches up.
func (h *hub) sendLocked(ev event) {
	for s := range h.streams {
		if s.key != "" && s.key != ev.key {
			continue
		}
		if s.key == "" && ev.job == nil && !ev.gone {
			continue // the list shows no output
		}
		select {
		case s.ch <- ev:
		default:
			h.dropLocked(s)
		}
	}
}

func (h *hub) dropLocked(s *stream) {
	if !s.closed {
		s.closed = true
		close(s.ch)
	}
	delete(h.streams, s)
}

// snapshot is what a stream starts from.
type snapshot struct {
	job   *bus.Job
	gen   string
	items []Item
	jobs  []*bus.Job
}

// subscribe opens a stream for key ("" for the list) and returns, taken at
// the same instant, the state it starts from: for a job, its state and the
// tail items after item n of generation gen (all of them when gen is not the
// tail's). ok is false when too many streams are open or the hub is closed.
func (h *hub) subscribe(key, gen string, n uint64) (s *stream, snap snapshot, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done || len(h.streams) >= h.maxStreams {
		return nil, snapshot{}, false
	}
	s = &stream{key: key, ch: make(chan event, h.buffer)}
	h.streams[s] = struct{}{}
	if key == "" {
		snap.jobs = h.listLocked()
		return s, snap, true
	}
	snap.job = h.jobs[key]
	if t := h.tails[key]; t != nil {
		snap.gen = t.gen
		if gen != t.gen {
			n = 0
		}
		snap.items = t.since(n)
	}
	return s, snap, true
}

// unsubscribe closes s (it may be closed already).
func (h *hub) unsubscribe(s *stream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dropLocked(s)
}

// close ends every stream; later subscriptions fail.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.done = true
	for s := range h.streams {
		h.dropLocked(s)
	}
}

// job returns a job's state and its tail (nil when the KV holds no such job).
func (h *hub) job(key string) (*bus.Job, string, []Item) {
	h.mu.Lock()
	defer h.mu.Unlock()
	j := h.jobs[key]
	if t := h.tails[key]; t != nil {
		return j, t.gen, t.since(0)
	}
	return j, "", nil
}

// list returns every job, open ones first, newest first.
func (h *hub) list() ([]*bus.Job, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.listLocked(), h.synced
}

func (h *hub) listLocked() []*bus.Job {
	out := make([]*bus.Job, 0, len(h.jobs))
	for _, j := range h.jobs {
		out = append(out, j)
	}
	slices.SortFunc(out, func(a, b *bus.Job) int {
		if at, bt := a.Status.Terminal(), b.Status.Terminal(); at != bt {
			if at {
				return 1
			}
			return -1
		}
		return cmp.Or(b.Created.Compare(a.Created), strings.Compare(a.Key, b.Key))
	})
	return out
}
