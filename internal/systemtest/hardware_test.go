package systemtest_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/nvidia/adbot/bus"
	onboarding "github.com/nvidia/adbot/onboarding/workflow"
)

// TestHardwareCycle runs one whole onboarding cycle on a real NVIDIA GPU
// host: real NVML for admission and the fit check, and an end-to-end script
// that generates text on the leased GPU with a small transformers model
// built from a config.json with random weights (scripts/gpu-standin). The
// agent is still the stand-in. It runs only when asked:
//
//	ADBOT_HARDWARE=1 ADBOT_GPU_STANDIN=$PWD/scripts/gpu-standin/build_and_run_ad.py \
//	ADBOT_STANDIN_HF_CONFIG=<a config.json> go test ./internal/systemtest -run TestHardwareCycle -v
//
// With ADBOT_HARDWARE_OUT set it writes what happened there (the runner's
// log, the workflow state, the PR body, the end-to-end log) for
// docs/hardware.md.
func TestHardwareCycle(t *testing.T) {
	if os.Getenv("ADBOT_HARDWARE") == "" {
		t.Skip("a GPU host test: set ADBOT_HARDWARE=1, ADBOT_GPU_STANDIN and ADBOT_STANDIN_HF_CONFIG on a host with NVML, torch and transformers")
	}
	script, cfg := os.Getenv("ADBOT_GPU_STANDIN"), os.Getenv("ADBOT_STANDIN_HF_CONFIG")
	if script == "" || cfg == "" {
		t.Fatal("set ADBOT_GPU_STANDIN (the GPU end-to-end script) and ADBOT_STANDIN_HF_CONFIG (a config.json)")
	}
	// The config goes into the HF cache, which the sandboxes see read-only.
	cache := t.TempDir()
	t.Setenv("HF_HUB_CACHE", cache)
	raw, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg = filepath.Join(cache, "standin-config.json")
	if err := os.WriteFile(cfg, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ADBOT_STANDIN_HF_CONFIG", cfg)
	r := onboardingRigWith(t, rigSetup{e2eScript: script, nvml: nvml.New(), tweak: func(o *onboarding.Options) { o.HFCache = cache },
		env: []string{"ADBOT_STANDIN_HF_CONFIG", "ADBOT_STANDIN_NEW_TOKENS", "LD_LIBRARY_PATH", "PYTHONPATH"}})
	const issue = 61
	key := bus.JobKey(owner, repo, issue)
	j := r.open(issue, "the onboarding cycle to end", func(j *bus.Job) bool { return j.Status != bus.StatusQueued && j.Status != bus.StatusRunning })
	out := os.Getenv("ADBOT_HARDWARE_OUT")
	if out != "" {
		st := r.state(key)
		b, _ := json.MarshalIndent(st, "", "  ")
		jb, _ := json.MarshalIndent(j, "", "  ")
		files := map[string]string{"runner-log.jsonl": r.logs.String(), "workflow-state.json": string(b) + "\n" + string(jb)}
		for _, p := range r.gh.PullRequests(owner, repo) {
			files["pr-body.md"] = p.Body
		}
		if st.E2E.Runs > 0 {
			files["e2e-last.log"] = r.object(key, "cycle-1/e2e-"+itoa(st.E2E.Runs)+".stdout") + "\n--- stderr ---\n" +
				r.object(key, "cycle-1/e2e-"+itoa(st.E2E.Runs)+".stderr")
		}
		for name, text := range files {
			if err := os.WriteFile(filepath.Join(out, name), []byte(text), 0o644); err != nil {
				t.Error(err)
			}
		}
	}
	if j.Status != bus.StatusWaitingReview {
		t.Fatalf("cycle ended %s: %s", j.Status, j.Note)
	}
	st := r.state(key)
	t.Logf("GPUs %v; e2e: %s; %d pairs; gather fit: %s", j.RunnerGPUs, st.E2E.Reason, len(st.E2E.Pairs), st.Gather.Fit)
	if !strings.Contains(r.object(key, "cycle-1/e2e-"+itoa(st.E2E.Runs)+".stdout"), "on NVIDIA") {
		t.Errorf("the end-to-end log does not show a run on an NVIDIA GPU")
	}
}
