package jobs_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/jobs"
	"github.com/nvidia/adbot/onboarding/statuscomment"
)

// requests counts the fake GitHub's requests with method whose path ends in suffix.
func (r *rig) requests(method, suffix string) int {
	n := 0
	for _, q := range r.gh.Requests() {
		if q.Method == method && strings.HasSuffix(q.Path, suffix) {
			n++
		}
	}
	return n
}

// TestOnboardPostsStatusOnce: a fresh onboard posts its status comment as it
// reads once the cycle is out, without listing the issue's comments first and
// without editing it afterwards.
func TestOnboardPostsStatusOnce(t *testing.T) {
	r := newRig(t, -1)
	r.send(onboard(1, maint, "Qwen/Qwen3-0.6B"))
	j := r.job(1)
	if j == nil || j.StatusCommentID == 0 || j.Cycle != 1 {
		t.Fatalf("job = %+v", j)
	}
	if n := r.requests("GET", "/issues/1/comments"); n != 0 {
		t.Errorf("%d listings of the issue's comments, want 0", n)
	}
	if n := r.requests("PATCH", "/issues/comments/"+itoa(j.StatusCommentID)); n != 0 {
		t.Errorf("%d edits of the status comment, want 0", n)
	}
	c, ok := r.gh.Comment(j.StatusCommentID)
	if !ok || !strings.Contains(c.Body, "| Cycle | 1 |") || !strings.Contains(c.Body, "(position 1 in the queue for 1 GPU)") {
		t.Errorf("status comment = %q, want it to show cycle 1, queued first", c.Body)
	}
}

// TestOnboardAdoptsStatusAfterCrash: an attempt that posted the status
// comment and died before recording it leaves the job written by its delivery
// with no comment id; the next attempt of that delivery finds the comment by
// its marker instead of posting a second.
func TestOnboardAdoptsStatusAfterCrash(t *testing.T) {
	r := newRig(t, -1)
	c := onboard(1, maint, "Qwen/Qwen3-0.6B")
	id := r.send(c)
	j := r.job(1)
	if j == nil || j.StatusCommentID == 0 {
		t.Fatalf("job = %+v", j)
	}
	posted := j.StatusCommentID
	// Back to the moment between posting and recording.
	r.setJob(1, func(j *bus.Job) { j.StatusCommentID, j.Cycle, j.Status = 0, 0, bus.StatusQueued })
	if err := r.res.Deliveries.Delete(context.Background(), bus.DeliveryKey(id)); err != nil {
		t.Fatal(err)
	}
	c.DeliveryID = id
	r.sendAs(c, id+"-again")
	j = r.job(1)
	if j.StatusCommentID != posted {
		t.Errorf("status comment %d recorded, want the one posted before, %d", j.StatusCommentID, posted)
	}
	if n := len(r.bodies(1)); n != 1 {
		t.Errorf("%d bot comments, want 1", n)
	}
	if n := r.requests("GET", "/issues/1/comments"); n != 1 {
		t.Errorf("%d listings of the issue's comments, want 1 (the recovery)", n)
	}
	if cs := r.cycles(1); len(cs) != 1 {
		t.Errorf("%d cycles, want 1 (the republished one is a duplicate)", len(cs))
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

// TestQueuedShowsWhy: a queued job's status comment and /onboard status
// reply say where it stands in the queue and why it waits, from the runners'
// presence entries.
func TestQueuedShowsWhy(t *testing.T) {
	r := newRig(t, -1)
	p, _ := json.Marshal(bus.Presence{Name: "small", GPUs: 2, FreeGPUs: 2, Seen: time.Now()})
	if _, err := r.res.Runners.Put(context.Background(), "small", p); err != nil {
		t.Fatal(err)
	}
	r.send(onboard(2, maint, "org/big")) // 70B: 4 GPUs
	j := r.job(2)
	if j == nil || j.GPUs != 4 || j.StatusCommentID == 0 {
		t.Fatalf("job = %+v", j)
	}
	const why = "waiting for 4 free GPUs; 1 runner online, largest has 2: none can run it"
	c, _ := r.gh.Comment(j.StatusCommentID)
	if !strings.Contains(c.Body, why) || !strings.Contains(c.Body, "position 1 in the queue for 4 GPUs") {
		t.Errorf("status comment = %q, want the wait reason and position 1", c.Body)
	}
	if !strings.Contains(c.Body, statuscomment.Marker(j.Key)) {
		t.Errorf("status comment lost its marker: %q", c.Body)
	}
	r.send(bus.Command{Kind: bus.CmdStatus, Event: "issue_comment.created", InstallationID: 1, Issue: 2, Actor: maint})
	bodies := r.bodies(2)
	last := bodies[len(bodies)-1]
	if !strings.Contains(last, "It is "+why+".") || !strings.Contains(last, "1 cycle for 4 GPUs waits") {
		t.Errorf("status reply = %q, want the wait reason and the queue", last)
	}
	// A job that is not queued shows neither.
	r.setJob(2, func(j *bus.Job) { j.Status, j.Runner = bus.StatusRunning, "big" })
	r.send(bus.Command{Kind: bus.CmdStatus, Event: "issue_comment.created", InstallationID: 1, Issue: 2, Actor: maint})
	bodies = r.bodies(2)
	if last := bodies[len(bodies)-1]; strings.Contains(last, "waiting for") || strings.Contains(last, "for 4 GPUs wait") {
		t.Errorf("status reply of a running job = %q", last)
	}
	if c, _ := r.gh.Comment(j.StatusCommentID); strings.Contains(c.Body, "waiting for") {
		t.Errorf("status comment of a running job = %q", c.Body)
	}
}

// TestWatchStatusFollowsRunners: the status comment's one writer follows what
// runners record in the job (the phase running, then how the cycle ended)
// and edits the comment only when its text changes.
func TestWatchStatusFollowsRunners(t *testing.T) {
	r := newRig(t, -1)
	r.send(onboard(1, maint, "Qwen/Qwen3-0.6B"))
	j := r.job(1)
	if j == nil || j.StatusCommentID == 0 {
		t.Fatalf("job = %+v", j)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	w := jobs.NewWorker(jobs.WorkerDeps{Clients: r.cc, Bus: r.res})
	go func() { done <- w.WatchStatus(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("WatchStatus: %v", err)
		}
	}()
	body := func() string {
		c, _ := r.gh.Comment(j.StatusCommentID)
		return c.Body
	}
	waitBody := func(what, want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(body(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("the status comment never showed %s (%q):\n%s", what, want, body())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// A runner takes the cycle and starts the end-to-end phase: the
	// watcher may first see the job as it was when it started watching.
	r.setJob(1, func(j *bus.Job) {
		j.Status, j.Runner, j.RunnerGPUs, j.Running = bus.StatusRunning, "gpu-1", []int{0}, "e2e"
		j.Posted = map[string]int64{"1/gather/done": 1}
	})
	waitBody("the running phase", "**AutoDeploy end-to-end run** ← running")
	edits := r.requests("PATCH", "/issues/comments/"+itoa(j.StatusCommentID))
	// A write that changes nothing shown leaves the comment alone.
	r.setJob(1, func(j *bus.Job) { j.BudgetTurns++ })
	r.setJob(1, func(j *bus.Job) { j.Status, j.Runner, j.RunnerGPUs, j.Running = bus.StatusWaitingReview, "", nil, "" })
	waitBody("the end of the cycle", "waiting for review")
	if got := r.requests("PATCH", "/issues/comments/"+itoa(j.StatusCommentID)); got > edits+2 {
		t.Errorf("%d edits after the phase started, want at most 2 (the unchanged write may not edit)", got-edits)
	}
}
