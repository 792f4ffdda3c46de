package jobs

import (
	"context"
	"encoding/json"
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
		j := &bus.Job{Key: bus.JobKey("octo", "models", n), Owner: "octo", Repo: "models", Issue: n, GPUs: 4}
		if err := bus.PublishCycle(ctx, res.JS, bus.NextCycle(j, bus.KindOnboard, nil, "")); err != nil {
			t.Fatal(err)
		}
		// The consumer counts a stored message a moment after the publish
		// is acknowledged: wait until it does, so the cache reads it.
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, err := res.Cycles.Consumer(ctx, bus.ConsumerName(4))
			if err == nil && c.CachedInfo().NumPending >= uint64(n) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the consumer never counted %d pending cycles", n)
			}
			time.Sleep(time.Millisecond)
		}
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
