package runners_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/internal/gpu/gputest"
	"github.com/nvidia/adbot/onboarding/comments"
	"github.com/nvidia/adbot/runners"
)

// The crash test runs runners as child processes (this test binary, re-run
// with ADBOT_CRASH_CHILD set) so that it can kill them with SIGKILL.

func TestMain(m *testing.M) {
	if os.Getenv("ADBOT_CRASH_CHILD") != "" {
		os.Exit(crashChild())
	}
	os.Exit(m.Run())
}

var crashPhases = []string{"p1", "p2", "p3", "p4"}

// crashWorkflow is a small cycle: four phases, each a short wait and an
// [AGENT] comment; the third also pushes the branch and opens the PR.
var crashWorkflow = runners.WorkflowFunc(func(ctx context.Context, c *runners.Cycle) error {
	for _, p := range crashPhases {
		err := c.Phase(ctx, p, func(ctx context.Context) error {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(100+rand.IntN(100)) * time.Millisecond):
			}
			if p == "p3" {
				if _, err := c.Push(ctx, false); err != nil {
					return err
				}
				if _, err := c.Reporter.OpenPR(ctx, "pr", runners.NewPR{Title: "[AGENT] onboard " + c.Msg.ModelID, Body: "crash test"}); err != nil {
					return err
				}
			}
			_, err := c.Reporter.Comment(ctx, 0, p, comments.Post{Title: "phase " + p, Log: "output of " + p + "\n"})
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
})

func crashChild() int {
	log := zerolog.New(os.Stderr).With().Timestamp().Logger()
	nc, err := nats.Connect(os.Getenv("ADBOT_CRASH_NATS"))
	if err != nil {
		log.Error().Err(err).Msg("connect")
		return 1
	}
	defer nc.Close()
	cfg := runners.Config{
		Name:          os.Getenv("ADBOT_CRASH_CHILD"),
		DataDir:       os.Getenv("ADBOT_CRASH_DATA"),
		Remote:        os.Getenv("ADBOT_CRASH_REMOTE"),
		GitHubAPIURL:  os.Getenv("ADBOT_CRASH_GITHUB"),
		DiskFloor:     -1,
		AdmitInterval: 50 * time.Millisecond,
		Pace:          -1,
	}
	r, err := runners.New(cfg, runners.Deps{Conn: nc, NVML: gputest.H100(2), Workflow: crashWorkflow})
	if err != nil {
		log.Error().Err(err).Msg("new runner")
		return 1
	}
	ctx, stop := signal.NotifyContext(log.WithContext(context.Background()), syscall.SIGTERM)
	defer stop()
	if err := r.Run(ctx); err != nil {
		log.Error().Err(err).Msg("run")
		return 1
	}
	return 0
}

type childEvent struct {
	Child   string `json:"-"`
	Message string `json:"message"`
	Job     string `json:"job"`
	Phase   string `json:"phase"`
	Level   string `json:"level"`
	Error   string `json:"error"`
}

type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

func TestCrashTakeover(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: runs child runner processes")
	}
	const kills = 20
	e := newEnv(t)
	events := make(chan childEvent, 10000)
	var all []childEvent
	var allMu sync.Mutex

	dataRoot := t.TempDir()
	spawn := func(name string) *child {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(),
			"ADBOT_CRASH_CHILD="+name,
			"ADBOT_CRASH_NATS="+e.srv.ClientURL(),
			"ADBOT_CRASH_DATA="+filepath.Join(dataRoot, name),
			"ADBOT_CRASH_REMOTE="+e.remote,
			"ADBOT_CRASH_GITHUB="+e.gh.URL(),
		)
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		c := &child{name: name, cmd: cmd, done: make(chan struct{})}
		go func() {
			defer close(c.done)
			sc := bufio.NewScanner(stderr)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				var ev childEvent
				if json.Unmarshal(sc.Bytes(), &ev) != nil {
					continue
				}
				ev.Child = name
				allMu.Lock()
				all = append(all, ev)
				allMu.Unlock()
				select {
				case events <- ev:
				default:
				}
			}
			_ = cmd.Wait()
		}()
		return c
	}

	var keys []string
	addJob := func() {
		issue := 100 + len(keys)
		key := e.addJob(issue, 1)
		e.gh.SetRef(testOwner, testRepo, "heads/"+fmt.Sprintf("adbot/qwen-qwen3-0.6b-%d", issue), strings.Repeat("b", 40))
		keys = append(keys, key)
	}
	for range 8 {
		addJob()
	}
	children := map[string]*child{"ca": spawn("ca"), "cb": spawn("cb")}
	t.Cleanup(func() {
		for _, c := range children {
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	})
	finished := func() int {
		n := 0
		for _, k := range keys {
			if e.job(k).Status == bus.StatusWaitingReview {
				n++
			}
		}
		return n
	}

	deadline := time.Now().Add(50 * time.Second)
	for killed := 0; killed < kills; {
		if time.Now().After(deadline) {
			t.Fatalf("only %d kills before the deadline", killed)
		}
		// Keep work in the queue so that there is always a cycle to interrupt.
		if len(keys)-finished() < 4 {
			addJob()
		}
		var ev childEvent
		select {
		case ev = <-events:
		case <-time.After(5 * time.Second):
			t.Fatalf("no child event in 5 s (after %d kills)", killed)
		}
		if ev.Message != "phase started" || rand.IntN(2) == 0 { // spread kills over the phases
			continue
		}
		c := children[ev.Child]
		time.Sleep(time.Duration(rand.IntN(120)) * time.Millisecond) // somewhere inside the phase
		_ = c.cmd.Process.Signal(syscall.SIGKILL)
		<-c.done
		killed++
		t.Logf("kill %d: %s during %s of %s", killed, c.name, ev.Phase, ev.Job)
		// Drop events queued from the dead incarnation.
		for len(events) > 0 {
			<-events
		}
		children[c.name] = spawn(c.name)
	}
	waitFor(t, 40*time.Second, "every job to finish", func() bool { return finished() == len(keys) })
	waitFor(t, 10*time.Second, "every cycle acknowledged", e.queueEmpty)
	for _, c := range children {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		<-c.done
	}

	allMu.Lock()
	defer allMu.Unlock()
	finishedBy := map[string]int{}
	resumed := 0
	for _, ev := range all {
		if ev.Message == "phase already complete: skipped" {
			resumed++
		}
		if ev.Message == "cycle finished" {
			finishedBy[ev.Job]++
		}
		if ev.Level == "error" && strings.Contains(ev.Message, "workflow panicked") {
			t.Errorf("%s: %s", ev.Child, ev.Message)
		}
	}
	if resumed == 0 {
		t.Error("no cycle resumed from a recorded phase: the kills never landed after a phase was recorded")
	}
	prs := map[string]int{}
	for _, p := range e.gh.PullRequests(testOwner, testRepo) {
		prs[p.Head]++
	}
	for i, k := range keys {
		// The job record says it finished (waitFor above); the log says by
		// whom. A kill can land after the record and before the log line, so
		// a finish may go unlogged, but none may be logged twice.
		j := e.job(k)
		if finishedBy[k] > 1 || j.Completed.IsZero() {
			t.Errorf("%s finished %d times (completed %v), want once", k, finishedBy[k], j.Completed)
		}
		if branch := fmt.Sprintf("adbot/qwen-qwen3-0.6b-%d", 100+i); prs[branch] != 1 || j.PR == 0 {
			t.Errorf("%s: %d pull requests from %s (job records #%d), want exactly one", k, prs[branch], branch, j.PR)
		}
		for _, p := range crashPhases {
			marker := "<!-- adbot:key 1/" + p + " -->"
			n := 0
			for _, c := range e.gh.Comments(testOwner, testRepo, 100+i) {
				if strings.HasSuffix(c.Body, marker) {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%s: %d comments for phase %s, want exactly one", k, n, p)
			}
		}
	}
	t.Logf("%d jobs, %d kills, %d phases skipped on resume; all finished once with one PR and one comment per phase", len(keys), kills, resumed)
}
