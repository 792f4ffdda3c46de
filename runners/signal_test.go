package runners

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/bus/bustest"
	"github.com/nvidia/adbot/internal/fakegithub"
	"github.com/nvidia/adbot/internal/gpu/gputest"
)

// TestCommandTwoStageSignals sends this process SIGTERM twice while
// `adbot runner` runs a cycle: the first stops new work and lets the cycle
// run on, the second kills it and gives it back.
func TestCommandTwoStageSignals(t *testing.T) {
	srv, nc, res := bustest.Start(t)
	gh := fakegithub.New(t)
	dir := t.TempDir()
	remote := filepath.Join(dir, "remote.git")
	for _, args := range [][]string{
		{"init", "--quiet", "--bare", "--initial-branch=main", remote},
		{"-C", remote, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit-tree", "-m", "first", "4b825dc642cb6eb9a060e54bf8d69288fbee4904"},
	} {
		out, err := exec.Command("git", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v %s", args, err, out)
		}
		if args[0] == "-C" {
			if out, err := exec.Command("git", "-C", remote, "update-ref", "refs/heads/main", string(bytes.TrimSpace(out))).CombinedOutput(); err != nil {
				t.Fatalf("update-ref: %v %s", err, out)
			}
		}
	}
	ctx := context.Background()
	key := bus.JobKey("o", "r", 1)
	if _, err := bus.CreateJob(ctx, res.Jobs, &bus.Job{Key: key, Owner: "o", Repo: "r", Issue: 1, InstallationID: 1, ModelID: "a/b", GPUs: 1, Status: bus.StatusQueued}); err != nil {
		t.Fatal(err)
	}
	if _, err := bus.Enqueue(ctx, res, key, bus.KindOnboard, nil, "", nil); err != nil {
		t.Fatal(err)
	}

	for k, v := range map[string]string{
		"ADBOT_RUNNER_NAME": "sig", "NATS_URL": srv.ClientURL(), "ADBOT_DATA_DIR": filepath.Join(dir, "data"),
		"ADBOT_TRTLLM_REMOTE": remote, "GITHUB_V3_API_URL": gh.URL(), "ADBOT_DISK_FLOOR_GB": "0", "ADBOT_GPUS": "",
	} {
		t.Setenv(k, v)
	}
	running := make(chan struct{})
	wf := WorkflowFunc(func(ctx context.Context, c *Cycle) error {
		close(running)
		<-ctx.Done()
		return ctx.Err()
	})
	var stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- command(ctx, nil, &bytes.Buffer{}, &stderr, Deps{NVML: gputest.H100(1), Workflow: wf})
	}()
	select {
	case <-running:
	case <-time.After(15 * time.Second):
		t.Fatalf("cycle did not start:\n%s", stderr.String())
	}
	// The command's signal handler is installed before the runner starts.
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("first SIGTERM ended the runner (%v) while its cycle ran", err)
	default:
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("runner: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("second SIGTERM did not stop the runner")
	}
	// The cycle was given back: another fetch gets it at once, not after the
	// ack wait (two minutes here).
	cons, err := res.Cycles.Consumer(ctx, bus.ConsumerName(1))
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for m := range batch.Messages() {
		md, _ := m.Metadata()
		if md.NumDelivered != 2 {
			t.Errorf("delivered %d times, want 2", md.NumDelivered)
		}
		got++
		_ = m.Ack()
	}
	if got != 1 {
		t.Errorf("cycle not given back: fetched %d", got)
	}
	_ = nc
}
