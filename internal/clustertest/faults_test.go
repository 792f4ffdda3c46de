package clustertest_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/bus/bustest"
	"github.com/nvidia/adbot/onboarding/statuscomment"
	"github.com/nvidia/adbot/server"
)

// streams are every stream adbot keeps, buckets included.
var streams = []string{
	bus.CycleStream, bus.CommandStream,
	"KV_" + bus.JobBucket, "KV_" + bus.LeaseBucket, "KV_" + bus.RunnerBucket, "KV_" + bus.DeliveryBucket,
	"OBJ_" + bus.LogStore,
}

// TestNodeKilledMidRun runs a batch of onboardings on the cluster with two
// runners, SIGKILLs the node leading the job bucket while every GPU is busy
// with a cycle, sends the rest of the batch while the cluster recovers, and
// holds the run to its promises: every delivery is carried out, every job's
// cycle completes exactly once, and GitHub gets one status comment, one pull
// request, one log comment and one check run per job, none twice. Review
// feedback made while a cycle runs goes out as the next cycle, though
// runners may not publish cycles. The node, started again, catches up with
// every stream and bucket, and nats-server refused nothing adbot did.
func TestNodeKilledMidRun(t *testing.T) {
	c := startCluster(t)
	r := newRig(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	admin := c.connect(serverUser, nil)
	js, err := jetstream.New(admin)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range streams {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		if info := s.CachedInfo(); info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			t.Fatalf("stream %s: %d replicas, cluster %+v; want 3", name, info.Config.Replicas, info.Cluster)
		}
	}

	// Two GPU hosts of two GPUs each: four one-GPU cycles at a time.
	runnerA, runnerB := r.startRunner("gpu-host-1", 2), r.startRunner("gpu-host-2", 2)
	const firstBatch, jobs = 4, 8
	guids := map[int]string{}
	for issue := 1; issue <= firstBatch; issue++ {
		guids[issue] = server.NewDeliveryID()
		if n := r.deliver("issues", guids[issue], issueOpened(t, issue)); n > 0 {
			t.Logf("delivery for #%d refused %d times before the fault", issue, n)
		}
	}
	// Mid-run: every GPU holds a cycle, held in its end-to-end step.
	busy := map[string]bool{}
	deadline := time.After(wait)
	for len(busy) < firstBatch {
		select {
		case k := <-r.wf.entered:
			busy[k] = true
		case <-deadline:
			t.Fatalf("only %d of %d cycles reached their end-to-end step within %s", len(busy), firstBatch, wait)
		}
	}

	victim := c.node(mustLeader(t, ctx, js, "KV_"+bus.JobBucket))
	jobsBefore := lastSeq(t, ctx, js, "KV_"+bus.JobBucket)
	t.Logf("SIGKILL %s, leader of KV_%s (last sequence %d)", victim.name, bus.JobBucket, jobsBefore)
	c.kill(victim)
	close(r.wf.gate)

	// The rest of the batch arrives while the cluster recovers; a refused
	// delivery comes again with its id, as GitHub's redelivery brings it.
	refused := 0
	for issue := firstBatch + 1; issue <= jobs; issue++ {
		guids[issue] = server.NewDeliveryID()
		refused += r.deliver("issues", guids[issue], issueOpened(t, issue))
	}
	// A delivery redelivered although it was carried out starts nothing.
	refused += r.deliver("issues", guids[1], issueOpened(t, 1))
	t.Logf("%d delivery attempts refused while a node was down", refused)

	waitFor(t, bus.AckWait+2*wait, fmt.Sprintf("all %d jobs to finish their first cycle", jobs), func() bool {
		for issue := 1; issue <= jobs; issue++ {
			j := r.job(ctx, issue)
			if j == nil || j.Status != bus.StatusWaitingReview {
				return false
			}
		}
		return true
	})
	for issue, guid := range guids {
		if !r.carriedOut(ctx, guid) {
			t.Errorf("delivery %s (#%d) was never carried out", guid, issue)
		}
	}
	// A cycle acknowledged during the fault may come back once after AckWait;
	// the runner finds it finished and acknowledges it without work.
	waitFor(t, bus.AckWait+wait, "the cycle stream to be empty", func() bool { return bustest.CyclesIdle(r.res) })

	t.Run("every cycle completed exactly once", func(t *testing.T) {
		if got := lastSeq(t, ctx, js, bus.CycleStream); got != jobs {
			t.Errorf("cycles published = %d, want %d (one per job)", got, jobs)
		}
		if got := lastSeq(t, ctx, js, bus.CommandStream); got != jobs {
			t.Errorf("commands published = %d, want %d (one per delivery id)", got, jobs)
		}
		runs, done := r.wf.counts()
		want := map[string]int{}
		for issue := 1; issue <= jobs; issue++ {
			key := bus.JobKey(owner, repo, issue)
			want[key+"/1"] = 1
			j := r.job(ctx, issue)
			if j == nil {
				t.Errorf("job #%d cannot be read", issue)
				continue
			}
			if j.Cycle != 1 || j.PR == 0 || j.HeadSHA == "" || j.Runner != "" || j.Phase != "pull-request" {
				t.Errorf("job #%d = cycle %d, PR %d, head %q, runner %q, phase %q; want cycle 1 done with a PR", issue, j.Cycle, j.PR, j.HeadSHA, j.Runner, j.Phase)
			}
		}
		if diff := cmp.Diff(done, want); diff != "" {
			t.Errorf("completed pull-request phases per cycle (-got +want):\n%s", diff)
		}
		if diff := cmp.Diff(slices.Sorted(maps.Keys(runs)), slices.Sorted(maps.Keys(want))); diff != "" {
			t.Errorf("cycles run (-got +want):\n%s", diff)
		}
		t.Logf("workflow runs per cycle (more than one: taken over or retried after the fault): %v", runs)
		if keys, err := r.res.Leases.Keys(ctx); err == nil {
			t.Errorf("leases still held: %v", keys)
		}
	})

	t.Run("GitHub got everything once", func(t *testing.T) {
		prs := r.gh.PullRequests(owner, repo)
		heads := map[string]int{}
		for _, p := range prs {
			heads[p.Head]++
		}
		if len(prs) != jobs || len(heads) != jobs {
			t.Errorf("%d pull requests from %d branches, want %d: %+v", len(prs), len(heads), jobs, prs)
		}
		checks := map[string]int{}
		for _, cr := range r.gh.CheckRuns(owner, repo) {
			checks[cr.HeadSHA]++
		}
		for issue := 1; issue <= jobs; issue++ {
			j := r.job(ctx, issue)
			if j == nil {
				t.Errorf("job #%d cannot be read", issue)
				continue
			}
			if checks[j.HeadSHA] != 1 {
				t.Errorf("#%d: %d check runs on its head %s, want 1", issue, checks[j.HeadSHA], j.HeadSHA)
			}
			status, logs := 0, 0
			for _, cm := range r.gh.Comments(owner, repo, issue) {
				if cm.Bot && strings.Contains(cm.Body, statuscomment.Marker(j.Key)) {
					status++
				}
			}
			for _, cm := range r.gh.Comments(owner, repo, j.PR) {
				if cm.Bot && strings.Contains(cm.Body, fmt.Sprintf("AutoDeploy end-to-end run of #%d, cycle 1", issue)) {
					logs++
				}
			}
			if status != 1 || logs != 1 {
				t.Errorf("#%d: %d status comments and %d log comments on PR #%d, want 1 and 1", issue, status, logs, j.PR)
			}
		}
		// No comment of the bot's posted twice anywhere.
		seen := map[string]string{}
		for _, q := range r.gh.Requests() {
			if q.Method != http.MethodPost || !strings.HasSuffix(q.Path, "/comments") {
				continue
			}
			if where, dup := seen[string(q.Body)]; dup {
				t.Errorf("the same comment posted twice, to %s and %s: %.200s", where, q.Path, q.Body)
			}
			seen[string(q.Body)] = q.Path
		}
	})

	// Review feedback: a remark made while the job's update cycle runs waits
	// in the job; the runner ends that cycle by staging the next one (its
	// user may not publish cycles), and the server publishes it.
	key1 := bus.JobKey(owner, repo, 1)
	j1 := r.job(ctx, 1)
	if j1 == nil || j1.PR == 0 {
		t.Fatalf("job #1 = %+v, want a pull request", j1)
	}
	remarkA := r.gh.AddComment(owner, repo, j1.PR, maintainer, "A: rename the config file.")
	r.deliver("issue_comment", server.NewDeliveryID(), prComment(t, remarkA))
	select {
	case <-r.wf.answering:
	case <-time.After(wait):
		t.Fatalf("the cycle answering remark A did not start within %s", wait)
	}
	remarkB := r.gh.AddComment(owner, repo, j1.PR, maintainer, "B: and add a unit test.")
	r.deliver("issue_comment", server.NewDeliveryID(), prComment(t, remarkB))
	waitFor(t, wait, "remark B to wait in job #1", func() bool {
		j := r.job(ctx, 1)
		return j != nil && len(j.PendingFeedback) == 1
	})
	close(r.wf.hold)
	waitFor(t, wait, "job #1's cycle 3, answering remark B, to finish", func() bool {
		j := r.job(ctx, 1)
		return j != nil && j.Cycle == 3 && j.Status == bus.StatusWaitingReview
	})
	if _, done := r.wf.counts(); done[key1+"/2"] != 1 || done[key1+"/3"] != 1 {
		t.Errorf("feedback cycles of #1 completed %d and %d times, want once each", done[key1+"/2"], done[key1+"/3"])
	}
	if got := lastSeq(t, ctx, js, bus.CycleStream); got != jobs+2 {
		t.Errorf("cycles published = %d, want %d", got, jobs+2)
	}

	// The killed node, started again on its store, catches up.
	if got := lastSeq(t, ctx, js, "KV_"+bus.JobBucket); got <= jobsBefore {
		t.Fatalf("the job bucket's last sequence %d did not grow past %d while %s was down: nothing to catch up on", got, jobsBefore, victim.name)
	}
	c.start(victim)
	c.waitHealthy(victim)
	// Quiet the bus so that every replica can agree: runners withdraw
	// their presence, the server stops.
	runnerA.shutdown(t)
	runnerB.shutdown(t)
	r.stopServer()
	// The runners did all they do within what their user may.
	if v := c.violations(); len(v) > 0 {
		t.Errorf("nats-server refused what adbot did:\n%s", strings.Join(v, "\n"))
	}
	var diff string
	deadline = time.After(clusterWait)
	for caughtUp := false; !caughtUp; {
		select {
		case <-deadline:
			t.Fatalf("%s did not catch up within %s: %s", victim.name, clusterWait, diff)
		case <-time.After(poll):
		}
		caughtUp = func() bool {
			diff = ""
			mine, err := c.streamStates(victim)
			if err != nil {
				diff = err.Error()
				return false
			}
			if got := slices.Sorted(maps.Keys(mine)); !slices.Equal(got, slices.Sorted(slices.Values(streams))) {
				diff = fmt.Sprintf("%s holds %v", victim.name, got)
				return false
			}
			for _, n := range c.nodes {
				if n == victim {
					continue
				}
				theirs, err := c.streamStates(n)
				if err != nil {
					diff = err.Error()
					return false
				}
				if d := cmp.Diff(mine, theirs); d != "" {
					diff = fmt.Sprintf("%s vs %s (-restarted +other):\n%s", victim.name, n.name, d)
					return false
				}
			}
			if !replicaCurrent(ctx, js, victim.name) {
				diff = victim.name + " is not a current replica of every stream"
				return false
			}
			return true
		}()
	}
}

// replicaCurrent reports whether node is, for every stream, the leader or a
// replica the leader counts current, with nothing left to apply.
func replicaCurrent(ctx context.Context, js jetstream.JetStream, node string) bool {
	for _, name := range streams {
		s, err := js.Stream(ctx, name)
		if err != nil {
			return false
		}
		cl := s.CachedInfo().Cluster
		if cl == nil {
			return false
		}
		ok := cl.Leader == node
		for _, p := range cl.Replicas {
			ok = ok || (p.Name == node && p.Current && p.Lag == 0)
		}
		if !ok {
			return false
		}
	}
	return true
}

func mustLeader(t *testing.T, ctx context.Context, js jetstream.JetStream, stream string) string {
	t.Helper()
	name, err := leaderOf(ctx, js, stream)
	if err != nil {
		t.Fatal(err)
	}
	return name
}

// lastSeq is the last sequence number stream has stored, read through the
// cluster (retried while a leader is elected).
func lastSeq(t *testing.T, ctx context.Context, js jetstream.JetStream, stream string) uint64 {
	t.Helper()
	var seq uint64
	waitFor(t, wait, "stream "+stream+" to answer", func() bool {
		s, err := js.Stream(ctx, stream)
		if err != nil {
			return false
		}
		seq = s.CachedInfo().State.LastSeq
		return true
	})
	return seq
}
