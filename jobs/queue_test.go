package jobs

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/bus/bustest"
)

// TestQueueCache: the queue figures are read from JetStream once per refresh,
// not once per question, and read again after it.
func TestQueueCache(t *testing.T) {
	_, _, res := bustest.Start(t)
	ctx := context.Background()
	publish := func(n int) {
		t.Helper()
		enqueue(t, res, n, 4)
	}
	presence := func(name string, gpus int) {
		t.Helper()
		b, _ := json.Marshal(bus.Presence{Name: name, GPUs: gpus, FreeGPUs: gpus, Seen: time.Now()})
		if _, err := res.Runners.Put(ctx, name, b); err != nil {
			t.Fatal(err)
		}
	}
	publish(1)
	presence("a", 2)

	q := newQueueCache(res, time.Hour)
	if n, ok := q.Pending(ctx, 4); !ok || n != 1 {
		t.Fatalf("Pending = %d, %v; want 1", n, ok)
	}
	fleet, ok := q.Fleet(ctx)
	if !ok || len(fleet) != 1 || fleet[0].Name != "a" {
		t.Fatalf("Fleet = %+v, %v", fleet, ok)
	}
	// Within the refresh the cached figures stand.
	publish(2)
	presence("b", 8)
	if n, _ := q.Pending(ctx, 4); n != 1 {
		t.Errorf("Pending within the refresh = %d, want the cached 1", n)
	}
	if fleet, _ := q.Fleet(ctx); len(fleet) != 1 {
		t.Errorf("Fleet within the refresh = %+v, want the cached one runner", fleet)
	}
	// A cache that is always stale reads again.
	fresh := newQueueCache(res, time.Nanosecond)
	if n, ok := fresh.Pending(ctx, 4); !ok || n != 2 {
		t.Errorf("Pending after the refresh = %d, %v; want 2", n, ok)
	}
	fleet, _ = fresh.Fleet(ctx)
	names := map[string]int{}
	for _, p := range fleet {
		names[p.Name] = p.GPUs
	}
	if diff := cmp.Diff(map[string]int{"a": 2, "b": 8}, names); diff != "" {
		t.Errorf("Fleet after the refresh (-want +got):\n%s", diff)
	}
	// Nothing to read from: no figures, no panic.
	var none *queueCache
	if _, ok := none.Pending(ctx, 4); ok {
		t.Error("a nil cache reported a pending count")
	}
	if _, ok := newQueueCache(&bus.Resources{}, time.Second).Fleet(ctx); ok {
		t.Error("a cache without buckets reported a fleet")
	}
}

// enqueue creates job octo/models#n needing gpus GPUs and queues its first
// cycle as the worker does.
func enqueue(t *testing.T, res *bus.Resources, n, gpus int) string {
	t.Helper()
	ctx := context.Background()
	key := bus.JobKey("octo", "models", n)
	j := &bus.Job{Key: key, Owner: "octo", Repo: "models", Issue: n, ModelID: "octo/m", GPUs: gpus}
	if _, err := bus.CreateJob(ctx, res.Jobs, j); err != nil {
		t.Fatal(err)
	}
	if _, err := bus.Enqueue(ctx, res, key, bus.KindOnboard, nil, "", nil); err != nil {
		t.Fatal(err)
	}
	return key
}

// TestQueuePosition: a job's place counts only the jobs that wait ahead of
// it for the same GPU count: not itself twice, not the jobs behind it, not a
// cancelled job, not another GPU count, and it does not grow as others join.
func TestQueuePosition(t *testing.T) {
	_, _, res := bustest.Start(t)
	ctx := context.Background()
	first := enqueue(t, res, 1, 4)
	cancelled := enqueue(t, res, 2, 4)
	other := enqueue(t, res, 3, 2)
	third := enqueue(t, res, 4, 4)
	if _, err := bus.UpdateJob(ctx, res.Jobs, cancelled, func(j *bus.Job) error {
		j.Status = bus.StatusCancelled
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	position := func(key string, gpus int) int {
		t.Helper()
		q := newQueueCache(res, time.Nanosecond)
		n, ok := q.Position(ctx, gpus, key)
		if !ok {
			t.Fatalf("Position(%s) unknown", key)
		}
		return n
	}
	for _, tc := range []struct {
		name string
		key  string
		gpus int
		want int
	}{
		{"first in line", first, 4, 1},
		{"behind a cancelled job", third, 4, 2},
		{"alone on its GPU count", other, 2, 1},
		{"not yet on the stream comes last", bus.JobKey("octo", "models", 99), 4, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := position(tc.key, tc.gpus); got != tc.want {
				t.Errorf("position = %d, want %d", got, tc.want)
			}
		})
	}
	// More jobs behind it leave the first where it is (1, not 2, 3...).
	enqueue(t, res, 5, 4)
	enqueue(t, res, 6, 4)
	if got := position(first, 4); got != 1 {
		t.Errorf("position after two more jobs = %d, want 1", got)
	}
	// A retried job's old cycle counts once: only its newest cycle waits.
	if _, err := bus.Enqueue(ctx, res, first, bus.KindRetry, nil, "", nil); err != nil {
		t.Fatal(err)
	}
	wl, err := Waiting(ctx, res, 4)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range wl.Jobs {
		got = append(got, c.Job)
	}
	want := []string{third, bus.JobKey("octo", "models", 5), bus.JobKey("octo", "models", 6), first}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("waiting jobs (-got +want):\n%s", diff)
	}
}

func TestWithReason(t *testing.T) {
	tests := []struct{ note, reason, want string }{
		{"", "", ""},
		{"", "waiting for 1 free GPU; no runner online", "waiting for 1 free GPU; no runner online"},
		{"retried by @a", "waiting for 1 free GPU; no runner online", "retried by @a; waiting for 1 free GPU; no runner online"},
		{"waiting for 4 free GPUs: given back by r1", "waiting for 4 free GPUs; 1 runner online", "waiting for 4 free GPUs: given back by r1"},
		{"retried by @a", "", "retried by @a"},
	}
	for _, tt := range tests {
		if got := withReason(tt.note, tt.reason); got != tt.want {
			t.Errorf("withReason(%q, %q) = %q, want %q", tt.note, tt.reason, got, tt.want)
		}
	}
}

// A worker whose consumer was deleted used to return nil from Run as if
// it had been told to stop: the server went on answering webhooks with
// nothing carrying out their commands.
func TestWorkerRunFailsWhenItsConsumerGoes(t *testing.T) {
	_, _, res := bustest.Start(t)
	w := NewWorker(WorkerDeps{Bus: res, Concurrency: 2})
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { done <- w.Run(ctx) }()
	// Delete the consumer once the worker pulls from it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := res.Commands.Consumer(ctx, bus.CommandConsumer)
		if err == nil && c.CachedInfo().NumWaiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("worker never pulled")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := res.Commands.DeleteConsumer(ctx, bus.CommandConsumer); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Error("Run returned nil after its consumer was deleted, want an error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run still running 10s after its consumer was deleted")
	}
}

// TestQueueConcurrentReaders: many commands asking at once, on a cache that
// is always stale, all get an answer (the first ones wait for the one read
// in flight; later ones take the last list), and the race detector is quiet.
func TestQueueConcurrentReaders(t *testing.T) {
	_, _, res := bustest.Start(t)
	ctx := context.Background()
	key := enqueue(t, res, 1, 8)
	q := newQueueCache(res, time.Nanosecond)
	var wg sync.WaitGroup
	got := make([]int, 16)
	for i := range got {
		wg.Go(func() {
			n, ok := q.Position(ctx, 8, key)
			if !ok {
				n = -1
			}
			got[i] = n
		})
	}
	wg.Wait()
	for i, n := range got {
		if n != 1 {
			t.Errorf("reader %d: position %d, want 1", i, n)
		}
	}
}

// BenchmarkWaiting measures one read of a GPU count's queue (what the
// worker does at most once a second per GPU count, and adbot status once per
// GPU count) with n jobs waiting, on an embedded JetStream with a file store.
func BenchmarkWaiting(b *testing.B) {
	for _, n := range []int{10, 100, MaxQueueScan} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			_, _, res := bustest.Start(b)
			ctx := context.Background()
			for i := 1; i <= n; i++ {
				key := bus.JobKey("octo", "models", i)
				if _, err := bus.CreateJob(ctx, res.Jobs, &bus.Job{Key: key, Owner: "octo", Repo: "models", Issue: i, ModelID: "octo/m", GPUs: 4}); err != nil {
					b.Fatal(err)
				}
				if _, err := bus.Enqueue(ctx, res, key, bus.KindOnboard, nil, "", nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for b.Loop() {
				wl, err := Waiting(ctx, res, 4)
				if err != nil || len(wl.Jobs) != n {
					b.Fatalf("Waiting = %d jobs, %v; want %d", len(wl.Jobs), err, n)
				}
			}
		})
	}
}
