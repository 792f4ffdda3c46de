package bus_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/bus/bustest"
)

// drain reads every cycle waiting on the subject for gpus GPUs. A publish is
// acknowledged before the consumer necessarily sees the message, so it waits
// a little for stragglers rather than asking once.
func drain(t *testing.T, r *bus.Resources, gpus int) []bus.Cycle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cons, err := r.Cycles.Consumer(ctx, bus.ConsumerName(gpus))
	if err != nil {
		t.Fatal(err)
	}
	var out []bus.Cycle
	for {
		batch, err := cons.Fetch(10, jetstream.FetchMaxWait(300*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			var c bus.Cycle
			if err := json.Unmarshal(m.Data(), &c); err != nil {
				t.Fatal(err)
			}
			out = append(out, c)
			if err := m.Ack(); err != nil {
				t.Fatal(err)
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoMessages) {
			t.Fatal(err)
		}
		if n == 0 {
			return out
		}
	}
}

func newJob(t *testing.T, r *bus.Resources) string {
	t.Helper()
	key := bus.JobKey("NVIDIA", "TensorRT-LLM", 7)
	j := &bus.Job{Key: key, Owner: "NVIDIA", Repo: "TensorRT-LLM", Issue: 7, ModelID: "Qwen/Qwen3-0.6B", GPUs: 1}
	if _, err := bus.CreateJob(context.Background(), r.Jobs, j); err != nil {
		t.Fatal(err)
	}
	return key
}

func TestEnqueueFeedbackFinish(t *testing.T) {
	_, _, r := bustest.Start(t)
	ctx := context.Background()
	key := newJob(t, r)

	j, err := bus.Enqueue(ctx, r, key, bus.KindOnboard, nil, "d1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if j.Cycle != 1 || j.Status != bus.StatusQueued || j.Outbox != nil {
		t.Fatalf("after Enqueue: cycle %d status %s outbox %v", j.Cycle, j.Status, j.Outbox)
	}
	if got := drain(t, r, 1); len(got) != 1 || got[0].Number != 1 || got[0].Kind != bus.KindOnboard {
		t.Fatalf("cycles on stream = %+v, want one onboard cycle 1", got)
	}

	// A runner takes it; two comments arrive while it runs: they wait.
	if _, err := bus.UpdateJob(ctx, r.Jobs, key, func(j *bus.Job) error { j.Status = bus.StatusRunning; j.Runner = "gpu-a"; return nil }); err != nil {
		t.Fatal(err)
	}
	for i, id := range []int64{101, 102, 101} {
		_, pub, err := bus.QueueFeedback(ctx, r, key, []bus.Feedback{{Source: "issue_comment", ID: id, Body: "fix"}}, "d")
		if err != nil || pub {
			t.Fatalf("feedback %d while running: published %v, err %v", i, pub, err)
		}
	}
	if got := drain(t, r, 1); len(got) != 0 {
		t.Fatalf("feedback during a running cycle published %d cycles", len(got))
	}

	// The cycle ends: the batch goes out as one cycle.
	j, err = bus.FinishCycle(ctx, r, key, 1, bus.StatusWaitingReview, "PR opened")
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != bus.StatusQueued || j.Cycle != 2 || len(j.PendingFeedback) != 0 || j.Runner != "" {
		t.Fatalf("after FinishCycle: %+v", j)
	}
	got := drain(t, r, 1)
	if len(got) != 1 || got[0].Kind != bus.KindFeedback || len(got[0].Feedback) != 2 {
		t.Fatalf("cycles after finish = %+v, want one feedback cycle with 2 remarks", got)
	}
	// Finishing cycle 1 again changes nothing.
	if j2, err := bus.FinishCycle(ctx, r, key, 1, bus.StatusFailed, ""); err != nil || j2.Cycle != 2 || j2.Status != bus.StatusQueued {
		t.Fatalf("second FinishCycle(1) = %+v, %v", j2, err)
	}

	// Cycle 2 ends with nothing pending: the job waits for review; new feedback publishes at once.
	bus.UpdateJob(ctx, r.Jobs, key, func(j *bus.Job) error { j.Status = bus.StatusRunning; return nil })
	if j, err = bus.FinishCycle(ctx, r, key, 2, bus.StatusWaitingReview, ""); err != nil || j.Status != bus.StatusWaitingReview {
		t.Fatalf("FinishCycle(2) = %+v, %v", j, err)
	}
	if _, pub, err := bus.QueueFeedback(ctx, r, key, []bus.Feedback{{Source: "review", ID: 9}}, "d9"); err != nil || !pub {
		t.Fatalf("feedback while waiting for review: published %v, err %v", pub, err)
	}
	if got := drain(t, r, 1); len(got) != 1 || got[0].Number != 3 {
		t.Fatalf("cycles = %+v, want cycle 3", got)
	}

	// A cancelled job takes no more work.
	bus.UpdateJob(ctx, r.Jobs, key, func(j *bus.Job) error { j.Status = bus.StatusCancelled; return nil })
	if _, _, err := bus.QueueFeedback(ctx, r, key, []bus.Feedback{{ID: 1}}, ""); !errors.Is(err, bus.ErrJobEnded) {
		t.Fatalf("feedback on cancelled job: err %v, want ErrJobEnded", err)
	}
	if _, err := bus.Enqueue(ctx, r, key, bus.KindRetry, nil, "", nil); !errors.Is(err, bus.ErrJobEnded) {
		t.Fatalf("retry on cancelled job: err %v, want ErrJobEnded", err)
	}
}

func TestFlushOutboxRepublishIsDeduplicated(t *testing.T) {
	_, _, r := bustest.Start(t)
	ctx := context.Background()
	key := newJob(t, r)
	// A writer staged cycle 1 and died before clearing the outbox (after or before publishing).
	j, err := bus.UpdateJob(ctx, r.Jobs, key, func(j *bus.Job) error {
		c := bus.NextCycle(j, bus.KindOnboard, nil, "")
		j.Cycle, j.Outbox, j.Status = 1, &c, bus.StatusQueued
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.PublishCycle(ctx, r.JS, *j.Outbox); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if j, err = bus.FlushOutbox(ctx, r, j); err != nil {
			t.Fatal(err)
		}
	}
	if j.Outbox != nil {
		t.Fatal("outbox not cleared")
	}
	if got := drain(t, r, 1); len(got) != 1 {
		t.Fatalf("%d cycles on the stream, want 1", len(got))
	}
	if err := bus.PublishCycle(ctx, r.JS, bus.Cycle{JobKey: key, Number: 9, GPUs: 3}); err == nil {
		t.Fatal("PublishCycle accepted 3 GPUs")
	}
}

// TestEnqueueAt: enqueueing from a job as created saves a read; a write made
// meanwhile is not lost (the compare-and-swap fails and the job is read
// again), and the job given is left as it was.
func TestEnqueueAt(t *testing.T) {
	_, _, r := bustest.Start(t)
	ctx := context.Background()
	for _, writeBetween := range []bool{false, true} {
		key := bus.JobKey("NVIDIA", "TensorRT-LLM", map[bool]int{false: 1, true: 2}[writeBetween])
		j := &bus.Job{Key: key, Owner: "NVIDIA", Repo: "TensorRT-LLM", Issue: 1, ModelID: "Qwen/Qwen3-0.6B", GPUs: 1,
			Status: bus.StatusQueued, Posted: map[string]int64{"x": 1}}
		rev, err := bus.CreateJob(ctx, r.Jobs, j)
		if err != nil {
			t.Fatal(err)
		}
		if writeBetween {
			if _, err := bus.UpdateJob(ctx, r.Jobs, key, func(cur *bus.Job) error { cur.Note = "meanwhile"; return nil }); err != nil {
				t.Fatal(err)
			}
		}
		got, err := bus.EnqueueAt(ctx, r, j, rev, bus.KindOnboard, nil, "d1", func(cur *bus.Job) error {
			cur.Posted["y"] = 2
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		stored, _, err := bus.GetJob(ctx, r.Jobs, key)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range []*bus.Job{got, stored} {
			if x.Cycle != 1 || x.Outbox != nil || x.Posted["y"] != 2 || (writeBetween && x.Note != "meanwhile") {
				t.Errorf("write between %v: job = %+v", writeBetween, x)
			}
		}
		if j.Cycle != 0 || len(j.Posted) != 1 {
			t.Errorf("write between %v: EnqueueAt changed the job given: %+v", writeBetween, j)
		}
		if cs := drain(t, r, 1); len(cs) != 1 || cs[0].JobKey != key || cs[0].Number != 1 {
			t.Errorf("write between %v: cycles = %+v", writeBetween, cs)
		}
	}
}
