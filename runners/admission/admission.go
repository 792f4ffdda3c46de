// Package admission decides which cycles a runner takes and which GPUs each
// one gets. It is pure bookkeeping over a GPU inventory, so the runner and the
// packing simulation (cmd/sim-packing) share every decision.
package admission

import (
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/internal/gpu"
)

// Ledger records which GPUs this runner has given to which cycle. A GPU is
// available when NVML calls it free and no cycle of ours holds it: a cycle's
// GPUs stay ours from admission until it ends, even before its processes
// allocate any memory. It is safe for concurrent use.
type Ledger struct {
	mu   sync.Mutex
	held map[int]string // GPU index -> holder (job key)
}

// Available returns the indices of devs that are free and not held, lowest first.
func (l *Ledger) Available(devs []gpu.Device) []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []int
	for _, d := range devs {
		if _, held := l.held[d.Index]; !held && d.Free() {
			out = append(out, d.Index)
		}
	}
	sort.Ints(out)
	return out
}

// Reserve gives holder the n lowest indices of avail that are still unheld,
// or reports false (and holds nothing) when fewer than n are.
func (l *Ledger) Reserve(holder string, avail []int, n int) ([]int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held == nil {
		l.held = map[int]string{}
	}
	var got []int
	for _, i := range avail {
		if _, held := l.held[i]; !held {
			got = append(got, i)
			if len(got) == n {
				break
			}
		}
	}
	if len(got) < n || n <= 0 {
		return nil, false
	}
	for _, i := range got {
		l.held[i] = holder
	}
	return got, true
}

// Release frees every GPU holder has.
func (l *Ledger) Release(holder string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, h := range l.held {
		if h == holder {
			delete(l.held, i)
		}
	}
}

// Held returns how many GPUs are held.
func (l *Ledger) Held() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.held)
}

// DefaultStarveAfter is how long a cycle too big for the GPUs free now may
// wait, while smaller ones keep taking them, before the runner stops taking
// smaller cycles so that enough GPUs come free together.
const DefaultStarveAfter = 10 * time.Minute

// Policy chooses the subject to pull from next. The zero value takes the
// largest cycle that fits, as many side by side as the GPUs allow.
type Policy struct {
	// MaxConcurrent bounds the cycles running at once (0: only GPUs bound it).
	MaxConcurrent int
	// StarveAfter: see DefaultStarveAfter (0 uses it; negative never holds back).
	StarveAfter time.Duration

	waitingSince map[int]time.Time
}

// Order returns the GPU sizes to try, in order, for a host with capacity GPUs
// of which avail are available and running cycles under way. pending gives the
// cycles known to wait per size (nil: unknown); it only decides holding back,
// never skips a size, since a count can lag (a redelivered cycle is not
// counted as pending by JetStream).
//
// Largest first: a big cycle that fits now may not fit after smaller ones take
// the GPUs, and the longest-waiting demand for many GPUs is the hardest to
// meet. When a size that this host could run (<= capacity) but cannot now has
// had cycles waiting longer than StarveAfter, smaller sizes are held back
// until it fits.
func (p *Policy) Order(now time.Time, capacity, avail, running int, pending map[int]int) []int {
	if p.MaxConcurrent > 0 && running >= p.MaxConcurrent {
		return nil
	}
	starve := p.StarveAfter
	if starve == 0 {
		starve = DefaultStarveAfter
	}
	if p.waitingSince == nil {
		p.waitingSince = map[int]time.Time{}
	}
	floor := 0 // sizes below floor are held back
	for _, s := range bus.GPUSizes {
		blocked := pending != nil && pending[s] > 0 && s > avail && s <= capacity
		if !blocked {
			delete(p.waitingSince, s)
			continue
		}
		since, ok := p.waitingSince[s]
		if !ok {
			p.waitingSince[s] = now
			continue
		}
		if starve > 0 && now.Sub(since) >= starve {
			floor = s
		}
	}
	var out []int
	for _, s := range slices.Backward(bus.GPUSizes) {
		if s > avail || s < floor {
			continue
		}
		out = append(out, s)
	}
	return out
}

// WaitReason explains to people why a cycle of need GPUs is still queued,
// given the runners online; it is bus.WaitReason, which the server shows too.
func WaitReason(need int, fleet []bus.Presence) string { return bus.WaitReason(need, fleet) }
