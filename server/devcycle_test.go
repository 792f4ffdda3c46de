package server

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/internal/gittest"
)

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestDevWholeCycle is what a newcomer does on a laptop without a GPU:
// adbot dev with its default data dir (./.data), mocked GPUs and
// ADBOT_TRTLLM_REMOTE a local bare repository, then one signed onboarding
// issue. The local runner must take the cycle, work in a worktree under
// ./.data/runner (not inside the mirror), report, and leave the job waiting
// for review.
func TestDevWholeCycle(t *testing.T) {
	hub := fakeHub(t) // reads fixtures: before the working directory moves
	cwd := t.TempDir()
	if err := os.Symlink(gittest.BareRepo(t, "TensorRT-LLM stand-in\n"), filepath.Join(cwd, "trtllm.git")); err != nil {
		t.Fatal(err)
	}
	t.Chdir(cwd)
	httpPort, natsPort := freePort(t), freePort(t)
	secret := randomHex(16)
	for k, v := range map[string]string{
		"ADBOT_DATA_DIR": "", "ADBOT_REPO_DIR": "", "ADBOT_TRTLLM_REMOTE": "trtllm.git", "ADBOT_GPUS": "mock:2xH100-80GB",
		"ADBOT_NATS_PORT": strconv.Itoa(natsPort), "ADBOT_METRICS_ADDRESS": "off", "GITHUB_WEBHOOK_SECRET": secret,
		"GITHUB_APP_ID": "", "GITHUB_APP_PRIVATE_KEY": "", "GITHUB_APP_PRIVATE_KEY_FILE": "", "NATS_URL": "",
		"HF_ENDPOINT": hub.URL, "ADBOT_DISK_FLOOR_GB": "0", "ADBOT_RUNNER_NAME": "laptop", "ADBOT_FEEDBACK_SETTLE": "0s",
	} {
		t.Setenv(k, v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- DevCommand(ctx, []string{"--port", strconv.Itoa(httpPort)}) }()
	stop := func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("adbot dev: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("adbot dev did not stop within 30s of cancel")
		}
	}
	defer func() {
		if ctx.Err() == nil {
			stop()
		}
	}()
	base := "http://127.0.0.1:" + strconv.Itoa(httpPort)
	waitUntil(t, 20*time.Second, "adbot dev ready", func() bool {
		resp, err := http.Get(base + ReadyRoute)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	body := onboardIssue(5, "Qwen/Qwen3-0.6B")
	if status, text := post(t, base+WebhookRoute, signed(secret, "issues", NewDeliveryID(), body), body); status != http.StatusOK {
		t.Fatalf("delivery = %d %q, want 200", status, text)
	}

	nc, err := nats.Connect("nats://127.0.0.1:" + strconv.Itoa(natsPort))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	kv, err := js.KeyValue(context.Background(), bus.JobBucket)
	if err != nil {
		t.Fatal(err)
	}
	key := bus.JobKey("NVIDIA", "TensorRT-LLM", 5)
	var j bus.Job
	waitUntil(t, 60*time.Second, "the job to wait for review", func() bool {
		e, err := kv.Get(context.Background(), key)
		if err != nil {
			return false
		}
		j = bus.Job{}
		_ = json.Unmarshal(e.Value(), &j)
		return j.Status == bus.StatusWaitingReview && j.Runner == ""
	})
	// The runner's smoke workflow (dev has no other) reported through the
	// printed GitHub calls.
	if j.Branch == "" || j.Completed.IsZero() || j.Posted["1/smoke/report"] == 0 {
		t.Errorf("job after the cycle = %+v", j)
	}
	if _, err := os.Stat(filepath.Join(cwd, ".data", "runner", "worktrees", "wt-0", "README.md")); err != nil {
		t.Errorf("no worktree under ./.data/runner/worktrees: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cwd, ".data", "runner", "trtllm.git", ".data")); err == nil {
		t.Error("a worktree landed inside the mirror")
	}
	stop()
}

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
