package runners_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/internal/gittest"
	"github.com/nvidia/adbot/internal/gpu"
	"github.com/nvidia/adbot/internal/gpu/gputest"
	"github.com/nvidia/adbot/runners"
)

// Tests of what adbot dev needs on a laptop: mocked GPUs, a relative data
// dir, a local remote, and a runner that outlives a failed clone.

// syncBuffer is a log sink that tests read while the runner writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// run starts a runner with cfg (test defaults filled in) and a logger that
// writes JSON lines to the returned buffer.
func (e *env) run(cfg runners.Config, nvml *gputest.Host) (*started, *syncBuffer) {
	e.t.Helper()
	if cfg.GitHubAPIURL == "" {
		cfg.GitHubAPIURL = e.gh.URL()
	}
	cfg.DiskFloor, cfg.AdmitInterval, cfg.Pace = -1, 50*time.Millisecond, -1
	deps := runners.Deps{Conn: e.nc, Workflow: runners.SmokeWorkflow{}}
	if nvml != nil {
		deps.NVML = nvml
	} else {
		deps.NVML = gputest.Missing()
	}
	r, err := runners.New(cfg, deps)
	if err != nil {
		e.t.Fatal(err)
	}
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(zerolog.New(logs).WithContext(context.Background()))
	s := &started{r: r, stop: cancel, done: make(chan error, 1)}
	go func() { s.done <- r.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		r.Force()
		<-s.done
		e.t.Logf("runner %s log:\n%s", cfg.Name, logs.String())
	})
	return s, logs
}

func (e *env) presence(name string) (bus.Presence, bool) {
	ent, err := e.res.Runners.Get(context.Background(), name)
	if err != nil {
		return bus.Presence{}, false
	}
	var p bus.Presence
	if err := json.Unmarshal(ent.Value(), &p); err != nil {
		e.t.Fatalf("presence of %s: %v", name, err)
	}
	return p, true
}

// TestMockGPUsRunACycle: on a host without NVML, ADBOT_GPUS=mock:... gives
// the runner idle GPUs of the spec that the unchanged admission uses, and
// the runner says once, at warn level, that they are mocked.
func TestMockGPUsRunACycle(t *testing.T) {
	for _, tc := range []struct {
		spec      string
		jobGPUs   int
		wantGPUs  int
		wantModel string
	}{
		{"mock:8xH100-80GB", 8, 8, "NVIDIA H100 80GB HBM3 (mock)"},
		{"mock:2xH200-141GB", 2, 2, "NVIDIA H200 141GB HBM3e (mock)"},
		{"mock:4xA100-40GB", 4, 4, "NVIDIA A100-SXM4-40GB (mock)"},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			e := newEnv(t)
			key := e.addJob(40, tc.jobGPUs)
			sel, err := gpu.ParseSelection(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			s, logs := e.run(runners.Config{Name: "laptop", DataDir: t.TempDir(), Remote: e.remote, GPUs: sel}, nil)
			waitFor(t, 20*time.Second, "the job to wait for review", func() bool { return e.job(key).Status == bus.StatusWaitingReview })
			if p := s.r.Presence(); p.GPUs != tc.wantGPUs || p.Draining {
				t.Errorf("presence = %+v, want %d GPUs taking work", p, tc.wantGPUs)
			}
			var warns, gpuLines int
			for line := range strings.SplitSeq(logs.String(), "\n") {
				if strings.Contains(line, "GPUs are mocked") {
					warns++
					if !strings.Contains(line, `"level":"warn"`) || !strings.Contains(line, tc.spec) {
						t.Errorf("mock line = %s, want a warning naming %s", line, tc.spec)
					}
				}
				if strings.Contains(line, `"message":"GPU"`) && strings.Contains(line, tc.wantModel) && strings.Contains(line, `"free":true`) {
					gpuLines++
				}
			}
			if diff := cmp.Diff([]int{warns, gpuLines}, []int{1, tc.wantGPUs}); diff != "" {
				t.Errorf("[mock warnings, free %s lines] (-got +want):\n%s", tc.wantModel, diff)
			}
		})
	}
}

// TestRelativeDataDirAndLocalRemote is adbot dev with its defaults: the data
// dir ./.data/runner and ADBOT_TRTLLM_REMOTE a local bare repository given
// by a relative path or a file:// URL. A job's worktree must land under the
// data dir, not inside the mirror, and the cycle must finish.
func TestRelativeDataDirAndLocalRemote(t *testing.T) {
	e := newEnv(t)
	cwd := t.TempDir()
	if err := os.Symlink(e.remote, filepath.Join(cwd, "trtllm.git")); err != nil {
		t.Fatal(err)
	}
	t.Chdir(cwd)
	for i, tc := range []struct{ name, dataDir, remote string }{
		{"relative path", ".data/runner", "trtllm.git"},
		{"file URL", "./.data/other", "file://" + e.remote},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := e.addJob(50+i, 1)
			s, _ := e.run(runners.Config{Name: "dev-" + tc.name[:4], DataDir: tc.dataDir, Remote: tc.remote}, gputest.H100(1))
			waitFor(t, 20*time.Second, "the job to wait for review", func() bool { return e.job(key).Status == bus.StatusWaitingReview })
			slot := filepath.Join(cwd, tc.dataDir, "worktrees", "wt-0")
			if _, err := os.Stat(filepath.Join(slot, "README.md")); err != nil {
				t.Errorf("no worktree at %s: %v", slot, err)
			}
			if _, err := os.Stat(filepath.Join(cwd, tc.dataDir, "trtllm.git", ".data")); err == nil {
				t.Error("a worktree landed inside the mirror")
			}
			s.stop()
			s.wait(t)
		})
	}
}

// TestFailedCloneRetries: a mirror that cannot be cloned does not end the
// runner. It says what to set, its presence says it takes no work and why,
// it tries again, and once the remote is there it works.
func TestFailedCloneRetries(t *testing.T) {
	e := newEnv(t)
	key := e.addJob(60, 1)
	remote := filepath.Join(t.TempDir(), "later.git")
	s, logs := e.run(runners.Config{Name: "early", DataDir: t.TempDir(), Remote: remote, MirrorRetry: 20 * time.Millisecond, MirrorRetryMax: 200 * time.Millisecond}, gputest.H100(1))

	var p bus.Presence
	waitFor(t, 10*time.Second, "presence saying the mirror is not ready", func() bool {
		var ok bool
		p, ok = e.presence("early")
		return ok && p.Draining && p.Reason != ""
	})
	for _, want := range []string{"clone mirror of " + remote, "ADBOT_TRTLLM_REMOTE", "ADBOT_REPO_DIR"} {
		if !strings.Contains(p.Reason, want) {
			t.Errorf("presence reason %q lacks %q", p.Reason, want)
		}
	}
	waitFor(t, 10*time.Second, "a second try", func() bool { return strings.Count(logs.String(), "mirror not ready") >= 2 })
	if st := e.job(key).Status; st != bus.StatusQueued {
		t.Errorf("a runner without a mirror took work: %s", st)
	}

	// The remote appears at once (a clone made beside it, then renamed), as
	// an administrator's would: a runner's try must not catch it half-made.
	gittest.Git(t, "", "clone", "--quiet", "--bare", e.remote, remote+".tmp")
	if err := os.Rename(remote+".tmp", remote); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the job to wait for review", func() bool { return e.job(key).Status == bus.StatusWaitingReview })
	if p, _ := e.presence("early"); p.Draining || p.Reason != "" {
		t.Errorf("presence after the mirror came = %+v, want taking work", p)
	}
	s.stop()
	s.wait(t)
}

// TestStopWhileCloneRetries: a runner waiting to try its clone again stops
// at once, cleanly, and withdraws its presence.
func TestStopWhileCloneRetries(t *testing.T) {
	e := newEnv(t)
	s, _ := e.run(runners.Config{Name: "waiting", DataDir: t.TempDir(), Remote: filepath.Join(t.TempDir(), "none.git"), MirrorRetry: time.Hour}, gputest.H100(1))
	waitFor(t, 10*time.Second, "presence saying the mirror is not ready", func() bool { p, ok := e.presence("waiting"); return ok && p.Draining })
	s.stop()
	s.wait(t)
	if p, ok := e.presence("waiting"); ok {
		t.Errorf("presence left after stop: %+v", p)
	}
}
