package server

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/internal/fakegithub"
)

// TestOutboxRelay: a cycle a runner staged in a job's outbox (runners may not
// publish cycles) goes out on the cycle stream, once, and the outbox is cleared.
func TestOutboxRelay(t *testing.T) {
	gh := fakegithub.New(t)
	s, _ := startServer(t, testConfig(t, gh.URL()), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	key := bus.JobKey("NVIDIA", "TensorRT-LLM", 9)
	j := &bus.Job{Key: key, Owner: "NVIDIA", Repo: "TensorRT-LLM", Issue: 9, InstallationID: 42, ModelID: "Qwen/Qwen3-0.6B", GPUs: 1, Cycle: 1, Status: bus.StatusRunning, Runner: "gpu-host-1"}
	if _, err := bus.CreateJob(ctx, s.res.Jobs, j); err != nil {
		t.Fatal(err)
	}
	fb := []bus.Feedback{{Source: "issue_comment", ID: 1, Author: "alice", Body: "rename the file"}}
	if _, _, err := bus.QueueFeedback(ctx, s.res, key, fb, "d-1"); err != nil {
		t.Fatal(err)
	}
	// The runner ends its cycle: the feedback becomes cycle 2, staged only.
	if ended, err := bus.EndCycle(ctx, s.res, key, 1, bus.StatusWaitingReview, "cycle complete"); err != nil || ended.Outbox == nil {
		t.Fatalf("EndCycle = %+v, %v; want cycle 2 staged", ended, err)
	}

	cons, err := s.res.Cycles.Consumer(ctx, bus.ConsumerName(1))
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(2, jetstream.FetchMaxWait(15*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var got []bus.Cycle
	for m := range batch.Messages() {
		var c bus.Cycle
		if err := json.Unmarshal(m.Data(), &c); err != nil {
			t.Fatal(err)
		}
		got = append(got, c)
		_ = m.Ack()
	}
	if len(got) != 1 || got[0].JobKey != key || got[0].Number != 2 || got[0].Kind != bus.KindFeedback {
		t.Fatalf("cycles published = %+v, want cycle 2 of %s", got, key)
	}
	if diff := cmp.Diff(got[0].Feedback, fb); diff != "" {
		t.Errorf("feedback (-got +want):\n%s", diff)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		j, _, err := bus.GetJob(ctx, s.res.Jobs, key)
		if err != nil {
			t.Fatal(err)
		}
		if j.Outbox == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the outbox was not cleared within 15s of publishing")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
