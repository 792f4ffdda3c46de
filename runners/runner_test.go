package runners_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/internal/gittest"
	"github.com/nvidia/adbot/internal/gpu/gputest"
	"github.com/nvidia/adbot/onboarding/comments"
	"github.com/nvidia/adbot/runners"
	"github.com/nvidia/adbot/runners/proc"
)

type started struct {
	r    *runners.Runner
	stop context.CancelFunc
	done chan error
}

func (e *env) start(name string, host *gputest.Host, wf runners.Workflow) *started {
	e.t.Helper()
	return e.startWith(name, host, wf, nil)
}

func (e *env) startWith(name string, host *gputest.Host, wf runners.Workflow, mod func(*runners.Config)) *started {
	e.t.Helper()
	cfg := runners.Config{
		Name:          name,
		DataDir:       e.t.TempDir(),
		Remote:        e.remote,
		GitHubAPIURL:  e.gh.URL(),
		DiskFloor:     -1,
		AdmitInterval: 50 * time.Millisecond,
		Pace:          -1,
	}
	if mod != nil {
		mod(&cfg)
	}
	r, err := runners.New(cfg, runners.Deps{Conn: e.nc, NVML: host, Workflow: wf})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(testLogger(e.t))
	s := &started{r: r, stop: cancel, done: make(chan error, 1)}
	go func() { s.done <- r.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		r.Force()
		<-s.done
	})
	return s
}

func (s *started) wait(t *testing.T) {
	t.Helper()
	select {
	case err := <-s.done:
		s.done <- err // for the cleanup, which waits on it too
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("runner did not stop")
	}
}

func TestSmokeCycleEndToEnd(t *testing.T) {
	e := newEnv(t)
	key := e.addJob(7, 1)
	host := gputest.H100(2)
	host.Use(0, 30<<30, 999) // someone else's job holds GPU 0
	var chunkMu sync.Mutex
	var chunks []runners.LogChunk
	sub, err := e.nc.Subscribe(runners.LogSubjectPrefix+key, func(m *nats.Msg) {
		var c runners.LogChunk
		_ = json.Unmarshal(m.Data, &c)
		chunkMu.Lock()
		chunks = append(chunks, c)
		chunkMu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	s := e.start("r1", host, runners.SmokeWorkflow{})

	waitFor(t, 20*time.Second, "the job to wait for review", func() bool { return e.job(key).Status == bus.StatusWaitingReview })
	j := e.job(key)
	if j.Runner != "" || j.Phase != "report" || j.Branch != "adbot/qwen-qwen3-0.6b-7" || j.Completed.IsZero() {
		t.Errorf("job after cycle = %+v", j)
	}
	for _, k := range []string{"1/inspect/done", "1/report/done", "1/smoke/report"} {
		if j.Posted[k] == 0 {
			t.Errorf("job record lacks %s: %v", k, j.Posted)
		}
	}
	var report []string
	for _, c := range e.gh.Comments(testOwner, testRepo, 7) {
		if strings.Contains(c.Body, "runner smoke check") {
			report = append(report, c.Body)
		}
	}
	if len(report) != 1 {
		t.Fatalf("got %d smoke comments, want 1", len(report))
	}
	for _, want := range []string{"[AGENT] ", "on GPUs [1]", "$ git status --short --branch", "## adbot/qwen-qwen3-0.6b-7", "first", "<!-- adbot:key 1/smoke/report -->"} {
		if !strings.Contains(report[0], want) {
			t.Errorf("smoke comment lacks %q:\n%s", want, report[0])
		}
	}
	// The status comment has one writer, the server (jobs.WatchStatus):
	// the runner records what it did in the job and edits no comment.
	if sc, _ := e.gh.Comment(j.StatusCommentID); sc.Edits != 0 {
		t.Errorf("the runner edited the status comment %d times; the server alone writes it", sc.Edits)
	}
	if j.Phase != "report" || j.Running != "" {
		t.Errorf("job records phase %q running %q, want report done and nothing running", j.Phase, j.Running)
	}
	waitFor(t, 5*time.Second, "the cycle to be acknowledged", e.queueEmpty)
	if _, err := e.res.Leases.Get(context.Background(), key); err == nil {
		t.Error("lease still held after the cycle was acknowledged")
	}
	// Presence is published while running and withdrawn on stop.
	p, err := e.res.Runners.Get(context.Background(), "r1")
	if err != nil {
		t.Fatalf("presence: %v", err)
	}
	var pres bus.Presence
	_ = json.Unmarshal(p.Value(), &pres)
	if pres.GPUs != 2 || pres.Name != "r1" {
		t.Errorf("presence = %+v", pres)
	}
	// Output streamed live, in order per step.
	chunkMu.Lock()
	next := map[string]int{}
	var streamed strings.Builder
	for _, c := range chunks {
		if c.Seq != next[c.Step] {
			t.Errorf("step %s: chunk %d arrived when %d was due", c.Step, c.Seq, next[c.Step])
		}
		next[c.Step] = c.Seq + 1
		streamed.WriteString(c.Data)
	}
	chunkMu.Unlock()
	if !strings.Contains(streamed.String(), "## adbot/qwen-qwen3-0.6b-7") {
		t.Errorf("live log lacks git status output: %q", streamed.String())
	}
	s.stop()
	s.wait(t)
	if _, err := e.res.Runners.Get(context.Background(), "r1"); err == nil {
		t.Error("presence not withdrawn on stop")
	}
	// Full logs went to the object store.
	names, err := e.res.Logs.List(context.Background())
	if err != nil || len(names) == 0 {
		t.Errorf("no logs uploaded: %v", err)
	}
}

// gpuRecorder is a workflow that records each cycle's GPUs and the
// CUDA_VISIBLE_DEVICES its processes see, and blocks until released.
type gpuRecorder struct {
	mu      sync.Mutex
	gpus    map[string][]int
	visible map[string]string
	running int
	peak    int
	release chan struct{}
}

func (g *gpuRecorder) Run(ctx context.Context, c *runners.Cycle) error {
	res, err := c.Exec(ctx, proc.Cmd{Name: "env", Args: []string{"sh", "-c", "echo $CUDA_VISIBLE_DEVICES"}})
	if err != nil {
		return err
	}
	out, _ := os.ReadFile(res.Stdout)
	g.mu.Lock()
	g.gpus[c.Msg.JobKey] = c.GPUs
	g.visible[c.Msg.JobKey] = strings.TrimSpace(string(out))
	g.running++
	g.peak = max(g.peak, g.running)
	g.mu.Unlock()
	defer func() { g.mu.Lock(); g.running--; g.mu.Unlock() }()
	select {
	case <-g.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestPacksCyclesSideBySide(t *testing.T) {
	e := newEnv(t)
	g := &gpuRecorder{gpus: map[string][]int{}, visible: map[string]string{}, release: make(chan struct{})}
	var keys []string
	for i := 1; i <= 4; i++ {
		keys = append(keys, e.addJob(i, 2))
	}
	e.start("dgx", gputest.H100(8), g)

	waitFor(t, 20*time.Second, "four 2-GPU cycles running at once", func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.running == 4
	})
	big := e.addJob(99, 8)
	g.mu.Lock()
	var all []int
	for _, k := range keys {
		all = append(all, g.gpus[k]...)
		if want := strings.Trim(jsonInts(g.gpus[k]), "[]"); g.visible[k] != want {
			t.Errorf("%s: CUDA_VISIBLE_DEVICES=%q, want %q", k, g.visible[k], want)
		}
	}
	g.mu.Unlock()
	slices.Sort(all)
	if diff := cmp.Diff(all, []int{0, 1, 2, 3, 4, 5, 6, 7}); diff != "" {
		t.Errorf("GPUs given out (-got +want); two cycles shared one:\n%s", diff)
	}
	if s := e.job(big).Status; s != bus.StatusQueued {
		t.Errorf("8-GPU job is %s while the host is full, want queued", s)
	}
	close(g.release)
	waitFor(t, 20*time.Second, "the 8-GPU job to finish", func() bool { return e.job(big).Status == bus.StatusWaitingReview })
	g.mu.Lock()
	defer g.mu.Unlock()
	if diff := cmp.Diff(g.gpus[big], []int{0, 1, 2, 3, 4, 5, 6, 7}); diff != "" {
		t.Errorf("8-GPU cycle GPUs (-got +want):\n%s", diff)
	}
	if g.peak != 4 {
		t.Errorf("peak concurrency %d, want 4", g.peak)
	}
}

func jsonInts(v []int) string { b, _ := json.Marshal(v); return string(b) }

func TestBusyGPUsAreNotAdmitted(t *testing.T) {
	e := newEnv(t)
	host := gputest.H100(2)
	host.Use(0, 4<<30, 1234) // a stranger's process on GPU 0
	g := &gpuRecorder{gpus: map[string][]int{}, visible: map[string]string{}, release: make(chan struct{})}
	two := e.addJob(1, 2)
	e.start("small", host, g)
	one := e.addJob(2, 1)
	waitFor(t, 10*time.Second, "the 1-GPU cycle to start", func() bool { g.mu.Lock(); defer g.mu.Unlock(); return g.gpus[one] != nil })
	g.mu.Lock()
	if diff := cmp.Diff(g.gpus[one], []int{1}); diff != "" {
		t.Errorf("1-GPU cycle GPUs (-got +want):\n%s", diff)
	}
	g.mu.Unlock()
	time.Sleep(300 * time.Millisecond) // several admission rounds
	if s := e.job(two).Status; s != bus.StatusQueued {
		t.Fatalf("2-GPU job is %s with one GPU busy, want queued", s)
	}
	host.Release(0)
	close(g.release)
	waitFor(t, 10*time.Second, "the 2-GPU job to finish once GPU 0 is free", func() bool { return e.job(two).Status == bus.StatusWaitingReview })
}

func TestFailedAndPanickingWorkflows(t *testing.T) {
	e := newEnv(t)
	fail := e.addJob(1, 1)
	panicky := e.addJob(2, 1)
	wf := runners.WorkflowFunc(func(ctx context.Context, c *runners.Cycle) error {
		if c.Msg.Issue == 2 {
			panic("kaboom")
		}
		return c.Phase(ctx, "compile", func(context.Context) error { return errBoom })
	})
	e.start("r", gputest.H100(2), wf)
	waitFor(t, 10*time.Second, "both jobs to fail", func() bool {
		return e.job(fail).Status == bus.StatusFailed && e.job(panicky).Status == bus.StatusFailed
	})
	if n := e.job(fail).Note; n != "phase compile: boom" {
		t.Errorf("note = %q", n)
	}
	if n := e.job(panicky).Note; !strings.Contains(n, "kaboom") {
		t.Errorf("note = %q", n)
	}
	waitFor(t, 5*time.Second, "both cycles acknowledged", e.queueEmpty)
}

func TestPhasesResumeAndPostsAreIdempotent(t *testing.T) {
	e := newEnv(t)
	key := e.addJob(5, 1)
	// A runner that died had completed phase "a" and meant to post the
	// comment of phase "b"; the comment did reach GitHub.
	marker := "\n<!-- adbot:key 1/b/comment -->"
	posted := e.gh.AddComment(testOwner, testRepo, 5, "adbot[bot]", "[AGENT] b"+marker)
	if _, err := bus.UpdateJob(context.Background(), e.res.Jobs, key, func(j *bus.Job) error {
		j.Posted = map[string]int64{"1/a/done": 1, "1/b/comment": -1}
		j.Phase = "a"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	branch := "adbot/qwen-qwen3-0.6b-5"
	e.gh.SetRef(testOwner, testRepo, "heads/"+branch, strings.Repeat("a", 40))
	var ran []string
	var mu sync.Mutex
	phase := func(c *runners.Cycle, ctx context.Context, name string, fn func(context.Context) error) error {
		return c.Phase(ctx, name, func(ctx context.Context) error {
			mu.Lock()
			ran = append(ran, name)
			mu.Unlock()
			return fn(ctx)
		})
	}
	wf := runners.WorkflowFunc(func(ctx context.Context, c *runners.Cycle) error {
		if err := phase(c, ctx, "a", func(context.Context) error { return nil }); err != nil {
			return err
		}
		if err := phase(c, ctx, "b", func(ctx context.Context) error {
			_, err := c.Reporter.Comment(ctx, 0, "b/comment", comments.Post{Title: "b", Log: "log of b"})
			return err
		}); err != nil {
			return err
		}
		return phase(c, ctx, "c", func(ctx context.Context) error {
			if _, err := c.Push(ctx, false); err != nil {
				return err
			}
			for range 2 { // twice: the second finds the first
				if _, err := c.Reporter.OpenPR(ctx, "pr", runners.NewPR{Title: "[AGENT] Onboard Qwen3", Body: "body"}); err != nil {
					return err
				}
			}
			_, err := c.Reporter.CheckRun(ctx, "check", runners.CheckRun{Name: "unit tests", HeadSHA: strings.Repeat("a", 40), Status: "completed", Conclusion: "success", Title: "ok", Summary: "all passed"})
			return err
		})
	})
	e.start("r", gputest.H100(1), wf)
	waitFor(t, 10*time.Second, "the job to finish", func() bool { return e.job(key).Status == bus.StatusWaitingReview })
	if diff := cmp.Diff(ran, []string{"b", "c"}); diff != "" {
		t.Errorf("phases run (-got +want); a was recorded complete:\n%s", diff)
	}
	j := e.job(key)
	if j.Posted["1/b/comment"] != posted.ID {
		t.Errorf("comment key records %d, want the existing comment %d", j.Posted["1/b/comment"], posted.ID)
	}
	var bodies int
	for _, c := range e.gh.Comments(testOwner, testRepo, 5) {
		if strings.Contains(c.Body, marker) {
			bodies++
		}
	}
	if bodies != 1 {
		t.Errorf("%d comments carry the key, want 1", bodies)
	}
	if prs := e.gh.PullRequests(testOwner, testRepo); len(prs) != 1 || j.PR != prs[0].Number {
		t.Errorf("pull requests %+v, job PR %d; want exactly one, recorded", prs, j.PR)
	}
	if crs := e.gh.CheckRuns(testOwner, testRepo); len(crs) != 1 {
		t.Errorf("%d check runs, want 1", len(crs))
	}
	// The push reached the remote.
	if got := gittest.Git(t, e.remote, "rev-parse", "refs/heads/"+branch); len(got) != 40 {
		t.Errorf("branch not pushed: %q", got)
	} else if j.HeadSHA != got {
		t.Errorf("job HeadSHA = %q, want the pushed head %s: approvals could never end the job", j.HeadSHA, got)
	}
	// No token ever went to anyone but the lease holder.
	if len(e.refused) != 0 {
		t.Errorf("%d token requests refused", len(e.refused))
	}
}

// TestStrangersMarkerIsNotAdopted: a person's comment ending with the
// marker of a post the bot meant to make does not count as that post.
func TestStrangersMarkerIsNotAdopted(t *testing.T) {
	e := newEnv(t)
	key := e.addJob(5, 1)
	marker := "\n<!-- adbot:key 1/b/comment -->"
	forged := e.gh.AddComment(testOwner, testRepo, 5, "mallory", "[AGENT] all tests passed"+marker)
	if _, err := bus.UpdateJob(context.Background(), e.res.Jobs, key, func(j *bus.Job) error {
		j.Posted = map[string]int64{"1/b/comment": -1}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	wf := runners.WorkflowFunc(func(ctx context.Context, c *runners.Cycle) error {
		_, err := c.Reporter.Comment(ctx, 0, "b/comment", comments.Post{Title: "b", Log: "log of b"})
		return err
	})
	e.start("r", gputest.H100(1), wf)
	waitFor(t, 10*time.Second, "the job to finish", func() bool { return e.job(key).Status == bus.StatusWaitingReview })
	if id := e.job(key).Posted["1/b/comment"]; id == forged.ID || id <= 0 {
		t.Errorf("comment key records %d; the forged comment is %d: want the bot's own post", id, forged.ID)
	}
}

func TestForceGivesCyclesBack(t *testing.T) {
	e := newEnv(t)
	key := e.addJob(3, 1)
	block := runners.WorkflowFunc(func(ctx context.Context, c *runners.Cycle) error {
		return c.Phase(ctx, "long", func(ctx context.Context) error {
			_, err := c.Exec(ctx, proc.Cmd{Name: "sleep", Args: []string{"sleep", "60"}})
			return err
		})
	})
	a := e.start("a", gputest.H100(1), block)
	waitFor(t, 10*time.Second, "runner a to take the cycle", func() bool { return e.job(key).Runner == "a" })
	time.Sleep(200 * time.Millisecond)
	a.stop()
	a.r.Force()
	a.wait(t)
	if j := e.job(key); j.Status != bus.StatusQueued || j.Runner != "" || !strings.Contains(j.Note, "was stopped") {
		t.Errorf("after a forced stop the job is %s with runner %q, note %q; want queued again", j.Status, j.Runner, j.Note)
	}
	done := runners.WorkflowFunc(func(ctx context.Context, c *runners.Cycle) error { return nil })
	e.start("b", gputest.H100(1), done)
	// Given back at once: b takes it well before the ack wait would.
	waitFor(t, 10*time.Second, "runner b to finish the job", func() bool { return e.job(key).Status == bus.StatusWaitingReview })
}

func TestGracefulStopFinishesRunningCycle(t *testing.T) {
	e := newEnv(t)
	key := e.addJob(4, 1)
	release := make(chan struct{})
	wf := runners.WorkflowFunc(func(ctx context.Context, c *runners.Cycle) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	s := e.start("a", gputest.H100(2), wf)
	waitFor(t, 10*time.Second, "the cycle to start", func() bool { return e.job(key).Status == bus.StatusRunning })
	s.stop() // first signal: drain
	other := e.addJob(8, 1)
	time.Sleep(300 * time.Millisecond)
	if st := e.job(other).Status; st != bus.StatusQueued {
		t.Errorf("draining runner took new work: %s", st)
	}
	select {
	case <-s.done:
		t.Fatal("Run returned while a cycle was running")
	default:
	}
	close(release)
	s.wait(t)
	if st := e.job(key).Status; st != bus.StatusWaitingReview {
		t.Errorf("running cycle ended %s, want waiting-review", st)
	}
}

func TestTransientFailureRetries(t *testing.T) {
	e := newEnv(t)
	key := e.addJob(6, 1)
	var mu sync.Mutex
	tries := 0
	wf := runners.WorkflowFunc(func(ctx context.Context, c *runners.Cycle) error {
		mu.Lock()
		defer mu.Unlock()
		tries++
		if tries == 1 {
			return runners.Transient(errors.New("hub unreachable"))
		}
		return nil
	})
	_ = wf
	// The retry comes after NakWithDelay(30s) in production; here we only
	// check the first outcome: the job stays queued/running, not failed.
	e.start("a", gputest.H100(1), wf)
	waitFor(t, 10*time.Second, "the first try", func() bool { mu.Lock(); defer mu.Unlock(); return tries >= 1 })
	waitFor(t, 5*time.Second, "the note", func() bool { return strings.Contains(e.job(key).Note, "hub unreachable") })
	if j := e.job(key); j.Status != bus.StatusQueued || j.Runner != "" {
		t.Errorf("after a transient failure the job is %s with runner %q, want queued", j.Status, j.Runner)
	}
}

func TestCancelledJobStopsItsCycle(t *testing.T) {
	e := newEnv(t)
	key := e.addJob(9, 1)
	stopped := make(chan error, 1)
	started := make(chan struct{})
	wf := runners.WorkflowFunc(func(ctx context.Context, c *runners.Cycle) error {
		close(started)
		_, err := c.Exec(ctx, proc.Cmd{Name: "sleep", Args: []string{"sleep", "60"}})
		stopped <- err
		return err
	})
	e.start("a", gputest.H100(1), wf)
	// Cancel once the workflow runs: a cancel that lands earlier (while the
	// worktree is made) stops the cycle before any process starts.
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the cycle's workflow did not start")
	}
	if _, err := bus.UpdateJob(context.Background(), e.res.Jobs, key, func(j *bus.Job) error { j.Status = bus.StatusCancelled; return nil }); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-stopped:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("process ended with %v, want cancelled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancelling the job did not stop its cycle")
	}
	waitFor(t, 5*time.Second, "the runner to let go", func() bool { j := e.job(key); return j.Runner == "" && j.Status == bus.StatusCancelled })
	waitFor(t, 5*time.Second, "the cycle acknowledged", e.queueEmpty)
}

func TestLowDiskTakesNoWork(t *testing.T) {
	e := newEnv(t)
	key := e.addJob(10, 1)
	s := e.startWith("full", gputest.H100(1), runners.SmokeWorkflow{}, func(c *runners.Config) { c.DiskFloor = 1 << 62 })
	waitFor(t, 5*time.Second, "presence saying draining", func() bool { return s.r.Presence().Draining })
	time.Sleep(300 * time.Millisecond)
	if st := e.job(key).Status; st != bus.StatusQueued {
		t.Errorf("runner below its disk floor took work: %s", st)
	}
}

func TestLongLogIsSplitIntoKeyedComments(t *testing.T) {
	e := newEnv(t)
	key := e.addJob(11, 1)
	var log strings.Builder
	for i := range 6000 {
		fmt.Fprintf(&log, "line %05d of a long pytest log with the token ghs_testtoken_r in it\n", i)
	}
	var ids []int64
	wf := runners.WorkflowFunc(func(ctx context.Context, c *runners.Cycle) error {
		return c.Phase(ctx, "tests", func(ctx context.Context) error {
			var err error
			ids, err = c.Reporter.Comment(ctx, 0, "tests/log", comments.Post{Title: "pytest log", Log: log.String(), Collapsed: true})
			return err
		})
	})
	e.start("r", gputest.H100(1), wf)
	waitFor(t, 10*time.Second, "the job to finish", func() bool { return e.job(key).Status == bus.StatusWaitingReview })
	var parts []string
	for _, c := range e.gh.Comments(testOwner, testRepo, 11) {
		if strings.Contains(c.Body, "pytest log") {
			parts = append(parts, c.Body)
		}
	}
	if len(parts) < 6 || len(parts) != len(ids) {
		t.Fatalf("%d parts posted, %d ids; want the log split in several", len(parts), len(ids))
	}
	for i, p := range parts {
		if len([]rune(p)) > 65536 || !strings.HasPrefix(p, "[AGENT] ") {
			t.Errorf("part %d: %d characters, prefix %q", i+1, len([]rune(p)), p[:10])
		}
		if !strings.HasSuffix(p, fmt.Sprintf("<!-- adbot:key 1/tests/log#%d -->", i+1)) {
			t.Errorf("part %d lacks its key marker", i+1)
		}
		if strings.Contains(p, "ghs_testtoken_r") {
			t.Errorf("part %d holds the runner's token", i+1)
		}
	}
}

// A runner stopped while it starts (connecting, reading GPUs, cloning or
// fetching its mirror, which kills git) stops cleanly: Run returns nil.
func TestStopWhileStarting(t *testing.T) {
	e := newEnv(t)
	for i, after := range []time.Duration{0, 5 * time.Millisecond, 20 * time.Millisecond, 60 * time.Millisecond} {
		s := e.start(fmt.Sprintf("starting-%d", i), gputest.H100(1), runners.SmokeWorkflow{})
		time.Sleep(after)
		s.stop()
		s.wait(t)
	}
}
