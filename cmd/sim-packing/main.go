// Command sim-packing measures how well the runner's admission packs cycles
// onto GPU hosts: cycles of 1, 2, 4 and 8 GPUs and varied lengths on hosts of
// 8 GPUs (go-nvml mock servers), on a simulated clock. Each host decides with
// the runner's own code: its GPUs read through gpu.Host (NVML), available ones
// from admission.Ledger, the size to pull from admission.Policy. A running
// cycle holds its GPUs' memory in the mock, as a real one would.
//
// It prints the makespan against its lower bound (the larger of total
// GPU-time over the GPU count and the longest cycle) for the runner's policy
// and for one cycle per host at a time.
//
//	go run ./cmd/sim-packing -cycles 200 -hosts 4 -seed 1
package main

import (
	"container/heap"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/internal/gpu"
	"github.com/nvidia/adbot/internal/gpu/gputest"
	"github.com/nvidia/adbot/runners/admission"
)

func main() {
	cycles := flag.Int("cycles", 200, "cycles to run")
	hosts := flag.Int("hosts", 4, "hosts")
	gpus := flag.Int("gpus", 8, "GPUs per host")
	seed := flag.Uint64("seed", 1, "random seed")
	seeds := flag.Int("seeds", 1, "run this many seeds from -seed and print each")
	flag.Parse()
	if *cycles < 1 || *hosts < 1 || *gpus < 1 || *seeds < 1 {
		fmt.Fprintln(os.Stderr, "sim-packing: -cycles, -hosts, -gpus and -seeds must be at least 1")
		os.Exit(2)
	}
	fmt.Printf("%d cycles (1/2/4/8 GPUs at 40/30/20/10%%, 10-180 min), %d hosts x %d GPUs\n", *cycles, *hosts, *gpus)
	fmt.Printf("%-6s %10s %12s %8s %16s %8s\n", "seed", "bound", "runner", "ratio", "one-per-host", "ratio")
	for s := *seed; s < *seed+uint64(*seeds); s++ {
		work := Workload(*cycles, s)
		lb := LowerBound(work, *hosts**gpus)
		packed, err := Simulate(work, *hosts, *gpus, 0)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		single, err := Simulate(work, *hosts, *gpus, 1)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("%-6d %10s %12s %8.3f %16s %8.3f\n", s, hm(lb), hm(packed), float64(packed)/float64(lb), hm(single), float64(single)/float64(lb))
	}
}

func hm(d time.Duration) string { return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60) }

// Job is one simulated cycle.
type Job struct {
	ID   int
	GPUs int
	Dur  time.Duration
}

// Workload draws n cycles: sizes 1, 2, 4, 8 GPUs with weights 40/30/20/10,
// lengths uniform in 10-180 minutes (whole minutes).
func Workload(n int, seed uint64) []Job {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	out := make([]Job, n)
	for i := range out {
		var g int
		switch p := r.IntN(100); {
		case p < 40:
			g = 1
		case p < 70:
			g = 2
		case p < 90:
			g = 4
		default:
			g = 8
		}
		out[i] = Job{ID: i, GPUs: g, Dur: time.Duration(10+r.IntN(171)) * time.Minute}
	}
	return out
}

// LowerBound is the larger of total GPU-time over total GPUs and the longest cycle.
func LowerBound(jobs []Job, totalGPUs int) time.Duration {
	var area, longest time.Duration
	for _, j := range jobs {
		area += time.Duration(j.GPUs) * j.Dur
		longest = max(longest, j.Dur)
	}
	return max(area/time.Duration(totalGPUs), longest)
}

type end struct {
	at   time.Duration
	host int
	job  Job
	gpus []int
}

type endHeap []end

func (h endHeap) Len() int { return len(h) }
func (h endHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].job.ID < h[j].job.ID
}
func (h endHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *endHeap) Push(x any)   { *h = append(*h, x.(end)) }
func (h *endHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

type simHost struct {
	mock    *gputest.Host
	nvml    *gpu.Host
	ledger  admission.Ledger
	policy  admission.Policy
	running int
}

// Simulate runs jobs (all queued at time 0, FIFO per size, as on the
// stream's subjects) on hosts of gpusPerHost GPUs and returns the makespan.
// maxConcurrent bounds the cycles a host runs at once (0: GPUs bound it).
func Simulate(jobs []Job, hosts, gpusPerHost, maxConcurrent int) (time.Duration, error) {
	ctx := context.Background()
	queues := map[int][]Job{}
	for _, j := range jobs {
		if bus.FitGPUs(j.GPUs) != j.GPUs || j.GPUs > gpusPerHost {
			return 0, fmt.Errorf("job %d needs %d GPUs: no host can run it", j.ID, j.GPUs)
		}
		queues[j.GPUs] = append(queues[j.GPUs], j)
	}
	hs := make([]*simHost, hosts)
	for i := range hs {
		m := gputest.H100(gpusPerHost)
		h, err := gpu.Open(m, gpu.Selection{})
		if err != nil {
			return 0, err
		}
		defer h.Close()
		hs[i] = &simHost{mock: m, nvml: h, policy: admission.Policy{MaxConcurrent: maxConcurrent}}
	}
	var now time.Duration
	ends := &endHeap{}
	pid := uint32(1000)
	for {
		// Every host takes what fits, as its admission loop would.
		for hi, h := range hs {
			for {
				devs, err := h.nvml.Inventory(ctx)
				if err != nil {
					return 0, err
				}
				avail := h.ledger.Available(devs)
				pending := map[int]int{}
				for s, q := range queues {
					pending[s] = len(q)
				}
				took := false
				for _, size := range h.policy.Order(time.Unix(0, 0).Add(now), len(devs), len(avail), h.running, pending) {
					if len(queues[size]) == 0 {
						continue // the fetch finds nothing; try the next size
					}
					j := queues[size][0]
					queues[size] = queues[size][1:]
					got, ok := h.ledger.Reserve(fmt.Sprint(j.ID), avail, size)
					if !ok {
						return 0, fmt.Errorf("host %d: reserve %d of %v failed", hi, size, avail)
					}
					pid++
					for _, g := range got {
						if !devs[g].Free() {
							return 0, fmt.Errorf("host %d: GPU %d given out while busy", hi, g)
						}
						h.mock.Use(g, 20<<30, pid)
					}
					h.running++
					heap.Push(ends, end{at: now + j.Dur, host: hi, job: j, gpus: got})
					took = true
					break
				}
				if !took {
					break
				}
			}
		}
		if ends.Len() == 0 {
			for s, q := range queues {
				if len(q) > 0 {
					return 0, fmt.Errorf("%d cycles of %d GPUs never admitted", len(q), s)
				}
			}
			return now, nil
		}
		// Advance the clock to the next cycle's end; release all ending then.
		e := heap.Pop(ends).(end)
		now = e.at
		finish := func(e end) {
			h := hs[e.host]
			for _, g := range e.gpus {
				h.mock.Release(g)
			}
			h.ledger.Release(fmt.Sprint(e.job.ID))
			h.running--
		}
		finish(e)
		for ends.Len() > 0 && (*ends)[0].at == now {
			finish(heap.Pop(ends).(end))
		}
	}
}
