package server

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/internal/fixtures"
	"github.com/nvidia/adbot/internal/standin"
	"github.com/nvidia/adbot/onboarding/workflow"
	"github.com/nvidia/adbot/runners"
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
// adbot dev --demo with its default data dir (./.data): mocked GPUs, the
// demo TensorRT-LLM remote, the stand-in agent and end-to-end script, the
// real onboarding workflow and real pytest, then one signed onboarding
// issue. The local runner must take the cycle, work in a worktree under
// ./.data/runner (not inside the mirror), run every phase, push the branch
// to the demo remote, open the pull request (printed, not sent) and leave
// the job waiting for review.
func TestDevWholeCycle(t *testing.T) {
	if err := standin.CheckPython(); err != nil {
		t.Skip(err)
	}
	if pytestPython() == "python3" && exec.Command("python3", "-m", "pytest", "--version").Run() != nil {
		t.Skip("no python3 with pytest (apt-get install python3-pytest)")
	}
	hub := fakeHub(t) // reads fixtures: before the working directory moves
	fixturesRoot := fixtures.Root()
	cwd := t.TempDir()
	t.Chdir(cwd)
	httpPort, natsPort := freePort(t), freePort(t)
	secret := randomHex(16)
	for k, v := range map[string]string{
		"ADBOT_DATA_DIR": "", "ADBOT_REPO_DIR": "", "ADBOT_TRTLLM_REMOTE": "", "ADBOT_GPUS": "", "ADBOT_AGENT_CMD": "",
		"ADBOT_PYTHON": "", "ADBOT_PASS_ENV": "", "ADBOT_STANDIN_STATE": "", "ADBOT_FIXTURES": fixturesRoot,
		"ADBOT_NATS_PORT": strconv.Itoa(natsPort), "ADBOT_METRICS_ADDRESS": "off", "GITHUB_WEBHOOK_SECRET": secret,
		"GITHUB_APP_ID": "", "GITHUB_APP_PRIVATE_KEY": "", "GITHUB_APP_PRIVATE_KEY_FILE": "", "NATS_URL": "",
		"HF_ENDPOINT": hub.URL, "ADBOT_DISK_FLOOR_GB": "0", "ADBOT_RUNNER_NAME": "laptop", "ADBOT_FEEDBACK_SETTLE": "0s",
	} {
		t.Setenv(k, v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	onboardingWorkflow := func() (runners.Workflow, error) {
		o, err := workflow.OptionsFromEnv(os.Getenv)
		return runners.Onboarding(workflow.New(o)), err
	}
	go func() {
		done <- DevCommand(onboardingWorkflow)(ctx, []string{"--demo", "--grant", "alice=write", "--port", strconv.Itoa(httpPort)})
	}()
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
	waitUntil(t, 4*time.Minute, "the onboarding cycle to end", func() bool {
		e, err := kv.Get(context.Background(), key)
		if err != nil {
			return false
		}
		j = bus.Job{}
		_ = json.Unmarshal(e.Value(), &j)
		return (j.Status == bus.StatusWaitingReview || j.Status == bus.StatusFailed) && j.Runner == ""
	})
	if j.Status != bus.StatusWaitingReview || j.PR == 0 || j.HeadSHA == "" || j.Completed.IsZero() || j.Posted["1/pull-request/done"] == 0 {
		t.Fatalf("job after the cycle = %s (%s), PR %d, head %q", j.Status, j.Note, j.PR, j.HeadSHA)
	}
	bare := filepath.Join(cwd, ".data", DemoDirName, standin.BareName)
	if out, err := exec.Command("git", "--git-dir", bare, "rev-parse", "refs/heads/"+j.Branch).Output(); err != nil || strings.TrimSpace(string(out)) != j.HeadSHA {
		t.Errorf("the demo remote's %s is %q (%v), want the job's head %s", j.Branch, out, err, j.HeadSHA)
	}
	if _, err := os.Stat(filepath.Join(cwd, ".data", "runner", "worktrees")); err != nil {
		t.Errorf("no worktrees under ./.data/runner: %v", err)
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
