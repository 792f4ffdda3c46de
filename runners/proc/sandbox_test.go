package proc_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/nvidia/adbot/runners/proc"
	"github.com/nvidia/adbot/runners/sandbox"
)

// job lays out a worktree and scratch dir, and a file beside them that no
// sandbox shows.
func job(t *testing.T) (spec sandbox.Spec, outside string) {
	t.Helper()
	root := t.TempDir()
	spec = sandbox.Spec{Worktree: filepath.Join(root, "wt"), Scratch: filepath.Join(root, "scratch")}
	for _, d := range []string{spec.Worktree, spec.Scratch} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	outside = filepath.Join(root, "runner-state.json")
	if err := os.WriteFile(outside, []byte("runner state\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return spec, outside
}

// script is the stand-in: it writes its worktree, prints its GitHub token
// (there must be none) and a secret (redacted), and reads a file outside.
var script = `echo made > new.txt; echo "gh=[$GITHUB_TOKEN]"; echo "leak ` + testSecret + `"; cat "$1" && echo READ-OUTSIDE; exit 0`

func TestRunSandboxed(t *testing.T) {
	if err := sandbox.Probe(context.Background(), "bwrap"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI must build sandboxes: %v", err)
		}
		t.Skipf("no sandbox on this machine (CI unset): %v", err)
	}
	spec, outside := job(t)
	r, chunks := newRunner(t)
	res, err := r.Run(context.Background(), proc.Cmd{
		Name: "pytest", Args: []string{"sh", "-c", script, "sh", outside},
		Env: []string{"GITHUB_TOKEN=" + testSecret}, Sandbox: sandbox.Test(spec),
	})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := os.ReadFile(res.Stdout)
	if got := string(out); got != "gh=[]\nleak [REDACTED]\n" {
		t.Errorf("stdout = %q, want no token, the secret redacted and no line from outside", got)
	}
	if b, err := os.ReadFile(filepath.Join(spec.Worktree, "new.txt")); err != nil || string(b) != "made\n" {
		t.Errorf("worktree write: %q, %v", b, err)
	}
	var streamed []byte
	for _, c := range *chunks {
		streamed = append(streamed, c.Data...)
	}
	if bytes.Contains(streamed, []byte(testSecret)) || bytes.Contains(streamed, []byte("READ-OUTSIDE")) {
		t.Errorf("streamed output holds a secret or the outside file: %q", streamed)
	}
}

func TestRunSandboxOff(t *testing.T) {
	spec, outside := job(t)
	r, _ := newRunner(t)
	r.Sandbox = sandbox.ModeOff
	var logs bytes.Buffer
	ctx := zerolog.New(&logs).WithContext(context.Background())
	res, err := r.Run(ctx, proc.Cmd{
		Name: "agent", Args: []string{"sh", "-c", script, "sh", outside}, Dir: spec.Worktree,
		Env: []string{"GITHUB_TOKEN=" + testSecret}, Sandbox: sandbox.Agent(spec, "", ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := os.ReadFile(res.Stdout)
	// Unconfined, it reads the outside file: that is what off means. The token still stays out.
	if got := string(out); got != "gh=[]\nleak [REDACTED]\nrunner state\nREAD-OUTSIDE\n" {
		t.Errorf("stdout = %q", got)
	}
	if !strings.Contains(logs.String(), `"level":"warn"`) || !strings.Contains(logs.String(), "UNCONFINED") {
		t.Errorf("no warning logged: %s", logs.String())
	}
}

func TestRunSandboxUnavailable(t *testing.T) {
	spec, _ := job(t)
	for _, tc := range []struct {
		name  string
		mode  sandbox.Mode
		bwrap string
		want  string
		is    error
	}{
		{"no bwrap", sandbox.ModeBwrap, filepath.Join(t.TempDir(), "bwrap"), "apt-get install bubblewrap", sandbox.ErrUnavailable},
		{"default mode, no bwrap", "", filepath.Join(t.TempDir(), "bwrap"), "apt-get install bubblewrap", sandbox.ErrUnavailable},
		{"bwrap that fails", sandbox.ModeBwrap, "false", "user namespaces", sandbox.ErrUnavailable},
		{"unknown mode", "docker", "", `sandbox mode "docker"`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := newRunner(t)
			r.Sandbox, r.Bwrap = tc.mode, tc.bwrap
			marker := filepath.Join(spec.Worktree, "started-"+strings.ReplaceAll(tc.name, " ", "-"))
			_, err := r.Run(context.Background(), proc.Cmd{Name: "e2e", Args: []string{"touch", marker}, Sandbox: sandbox.E2E(spec)})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("err = %v, want it to wrap %v", err, tc.is)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Error("the command ran without its sandbox")
			}
		})
	}
}

// TestRunSandboxedCancel: cancelling a sandboxed command kills all it
// started, a process that left for a session of its own included.
func TestRunSandboxedCancel(t *testing.T) {
	if err := sandbox.Probe(context.Background(), "bwrap"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI must build sandboxes: %v", err)
		}
		t.Skipf("no sandbox on this machine (CI unset): %v", err)
	}
	spec, _ := job(t)
	r, _ := newRunner(t)
	ready := make(chan struct{})
	var once sync.Once
	r.Sink = func(c proc.Chunk) {
		if bytes.Contains(c.Data, []byte("ready")) {
			once.Do(func() { close(ready) })
		}
	}
	// A sleep of an odd length marks the processes to look for afterwards.
	marker := "3" + strconv.Itoa(int(time.Now().UnixNano()%1e6)) + ".5"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		// "ready" only once the escaped sleeper is running.
		script := "setsid sh -c 'echo $$ > escaped.pid; exec sleep " + marker + "' & sleep " + marker +
			" & while ! test -s escaped.pid; do sleep 0.05; done; echo ready; wait"
		_, err := r.Run(ctx, proc.Cmd{Name: "e2e", Sandbox: sandbox.E2E(spec), Dir: spec.Worktree,
			Args: []string{"sh", "-c", script}})
		done <- err
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("ended before it was ready: %v", err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want it to wrap context.Canceled", err)
	}
	deadline := time.Now().Add(10 * time.Second) // the kernel tears the namespace down
	for {
		left := sleepers(t, marker)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			for _, pid := range left {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			t.Fatalf("processes %v outlived their cancelled sandbox", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func sleepers(t *testing.T, marker string) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Equal(b, []byte("sleep\x00"+marker+"\x00")) {
			pids = append(pids, pid)
		}
	}
	return pids
}
