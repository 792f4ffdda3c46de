package admission_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/internal/gpu"
	"github.com/nvidia/adbot/runners/admission"
)

func devs(free ...bool) []gpu.Device {
	out := make([]gpu.Device, len(free))
	for i, f := range free {
		out[i] = gpu.Device{Index: i}
		if !f {
			out[i].MemUsed = 10 << 30
		}
	}
	return out
}

func TestLedger(t *testing.T) {
	var l admission.Ledger
	d := devs(true, false, true, true, true)
	avail := l.Available(d)
	if diff := cmp.Diff(avail, []int{0, 2, 3, 4}); diff != "" {
		t.Fatalf("available (-got +want):\n%s", diff)
	}
	a, ok := l.Reserve("job-a", avail, 2)
	if !ok || !cmp.Equal(a, []int{0, 2}) {
		t.Fatalf("Reserve a = %v, %v", a, ok)
	}
	// The same stale view of avail must not hand out a's GPUs again.
	b, ok := l.Reserve("job-b", avail, 2)
	if !ok || !cmp.Equal(b, []int{3, 4}) {
		t.Fatalf("Reserve b = %v, %v", b, ok)
	}
	if _, ok := l.Reserve("job-c", avail, 1); ok {
		t.Fatal("reserved a GPU that is held")
	}
	if got := l.Available(d); len(got) != 0 {
		t.Fatalf("available while all held = %v", got)
	}
	l.Release("job-a")
	if diff := cmp.Diff(l.Available(d), []int{0, 2}); diff != "" {
		t.Fatalf("available after release (-got +want):\n%s", diff)
	}
	if l.Held() != 2 {
		t.Fatalf("held = %d", l.Held())
	}
}

func TestPolicyOrder(t *testing.T) {
	now := time.Unix(1000, 0)
	tests := []struct {
		name                     string
		pol                      admission.Policy
		capacity, avail, running int
		pending                  map[int]int
		want                     []int
	}{
		{"all free, unknown queue", admission.Policy{}, 8, 8, 0, nil, []int{8, 4, 2, 1}},
		{"three free", admission.Policy{}, 8, 3, 2, nil, []int{2, 1}},
		{"nothing free", admission.Policy{}, 8, 0, 4, nil, nil},
		{"pending counts do not skip sizes", admission.Policy{}, 8, 4, 0, map[int]int{1: 3}, []int{4, 2, 1}},
		{"one at a time", admission.Policy{MaxConcurrent: 1}, 8, 6, 1, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.pol.Order(now, tt.capacity, tt.avail, tt.running, tt.pending), tt.want); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
		})
	}
}

func TestPolicyHoldsBackForStarvedCycles(t *testing.T) {
	p := admission.Policy{StarveAfter: 10 * time.Minute}
	t0 := time.Unix(0, 0)
	pending := map[int]int{8: 1, 1: 5}
	// An 8-GPU cycle waits while small ones keep 2 GPUs busy.
	if got := p.Order(t0, 8, 6, 2, pending); !cmp.Equal(got, []int{4, 2, 1}) {
		t.Fatalf("at first = %v", got)
	}
	if got := p.Order(t0.Add(9*time.Minute), 8, 6, 2, pending); !cmp.Equal(got, []int{4, 2, 1}) {
		t.Fatalf("before StarveAfter = %v", got)
	}
	// After StarveAfter, smaller cycles are held back until 8 GPUs are free.
	if got := p.Order(t0.Add(10*time.Minute), 8, 6, 2, pending); len(got) != 0 {
		t.Fatalf("after StarveAfter = %v, want nothing", got)
	}
	if got := p.Order(t0.Add(11*time.Minute), 8, 8, 0, pending); !cmp.Equal(got, []int{8, 4, 2, 1}) {
		t.Fatalf("once 8 are free = %v", got)
	}
	// A host too small for the waiting cycle never holds back for it.
	small := admission.Policy{StarveAfter: time.Minute}
	small.Order(t0, 4, 2, 1, pending)
	if got := small.Order(t0.Add(time.Hour), 4, 2, 1, pending); !cmp.Equal(got, []int{2, 1}) {
		t.Fatalf("small host = %v", got)
	}
}

func TestWaitReason(t *testing.T) {
	tests := []struct {
		need  int
		fleet []bus.Presence
		want  string
	}{
		{4, nil, "waiting for 4 free GPUs; no runner online"},
		{4, []bus.Presence{{GPUs: 2, FreeGPUs: 2}, {GPUs: 2}}, "waiting for 4 free GPUs; 2 runners online, largest has 2: none can run it"},
		{1, []bus.Presence{{GPUs: 8, FreeGPUs: 0}}, "waiting for 1 free GPU; 1 runner online, most free on one is 0"},
		{2, []bus.Presence{{GPUs: 8, FreeGPUs: 4}, {GPUs: 8, Draining: true, FreeGPUs: 8}}, "waiting for 2 free GPUs; 2 runners online, one has 4 free and should take it shortly (1 draining)"},
	}
	for _, tt := range tests {
		if got := admission.WaitReason(tt.need, tt.fleet); got != tt.want {
			t.Errorf("WaitReason(%d) = %q, want %q", tt.need, got, tt.want)
		}
	}
}
