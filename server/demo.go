package server

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nvidia/adbot/internal/standin"
)

// DemoGPUs is the mock GPU inventory `adbot dev --demo` gives its runner.
const DemoGPUs = "mock:8xH100-80GB"

// DemoMaintainer is the login of the demo's payloads, which adbot dev
// --demo grants write permission on the dry-run GitHub.
const DemoMaintainer = "demo-maintainer"

// DemoDirName is the folder under the data dir that holds the demo remote,
// the stand-in scripts and their state.
const DemoDirName = "demo"

// demoPassEnv are the variables the demo's cycle processes inherit: the
// stand-ins' state folder and their knobs.
var demoPassEnv = []string{"ADBOT_STANDIN_STATE", "ADBOT_STANDIN_REVIEW", "ADBOT_STANDIN_TESTS", "ADBOT_STANDIN_E2E"}

// demoEnv is the process environment, reached through functions so that
// tests can hold it in a map.
type demoEnv struct {
	lookup func(string) (string, bool)
	set    func(key, value string) error
}

var osEnv = demoEnv{lookup: os.LookupEnv, set: os.Setenv}

// setupDemo prepares `adbot dev --demo`: it builds the demo TensorRT-LLM
// remote under <dataDir>/demo once (a later run reuses it), writes the
// stand-in agent and end-to-end script there, and points the local runner
// at them through the variables runners.ConfigFromEnv reads, leaving alone
// any the user set. It prints what to do next to out.
func setupDemo(ctx context.Context, dataDir string, port int, env demoEnv, out io.Writer) error {
	if err := standin.CheckPython(); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	dir, err := filepath.Abs(filepath.Join(dataDir, DemoDirName))
	if err != nil {
		return fmt.Errorf("demo: data dir %s: %w", dataDir, err)
	}
	bare := filepath.Join(dir, standin.BareName)
	source := "reused"
	if _, err := os.Stat(filepath.Join(bare, "HEAD")); err != nil {
		root := demoFixtures(env)
		if bare, err = standin.BuildRemote(ctx, dir, root); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		source = "built from the embedded skeleton"
		if root != "" {
			source = "built from the fixtures in " + root
		}
	}
	agentCmd, _, err := standin.Install(dir)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	payload := filepath.Join(dir, "issues.opened.json")
	if err := os.WriteFile(payload, []byte(demoIssue), 0o644); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defaults := [][2]string{
		{"ADBOT_GPUS", DemoGPUs},
		{"ADBOT_AGENT_CMD", agentCmd},
		{"ADBOT_TRTLLM_REMOTE", bare},
		{"ADBOT_DISK_FLOOR_GB", "0"},
		{"ADBOT_PYTHON", pytestPython()},
	}
	// The sandbox needs bubblewrap; a laptop without it (macOS has none)
	// still runs the demo, unconfined, which the runner warns about loudly.
	if _, err := exec.LookPath("bwrap"); err != nil {
		defaults = append(defaults, [2]string{"ADBOT_SANDBOX", "off"})
	}
	var lines []string
	for _, kv := range defaults {
		if v, ok := env.lookup(kv[0]); ok && v != "" {
			lines = append(lines, fmt.Sprintf("  %s=%s (yours)", kv[0], v))
			continue
		}
		if err := env.set(kv[0], kv[1]); err != nil {
			return fmt.Errorf("demo: set %s: %w", kv[0], err)
		}
		lines = append(lines, fmt.Sprintf("  %s=%s", kv[0], kv[1]))
	}
	// The pass list is added to, not replaced: the cycles need the state folder.
	pass, _ := env.lookup("ADBOT_PASS_ENV")
	names := strings.FieldsFunc(pass, func(r rune) bool { return r == ',' || r == ' ' })
	for _, k := range demoPassEnv {
		if !slices.Contains(names, k) {
			names = append(names, k)
		}
	}
	if err := env.set("ADBOT_PASS_ENV", strings.Join(names, ",")); err != nil {
		return fmt.Errorf("demo: set ADBOT_PASS_ENV: %w", err)
	}
	lines = append(lines, "  ADBOT_PASS_ENV="+strings.Join(names, ","))
	fmt.Fprintf(out, `adbot dev --demo: no GPU, no coding agent, no GitHub needed.
Demo TensorRT-LLM remote: %s (%s)
Stand-ins: %s and examples/auto_deploy/build_and_run_ad.py in the remote
Local runner environment:
%s

What to do next:
  1. In another terminal, with the GITHUB_WEBHOOK_SECRET this run uses, send an issue
     "onboard Qwen/Qwen3-8B" opened by a maintainer:
       adbot send --url http://localhost:%d%s issues %s
  2. Watch this log: the printed GitHub calls are the comments, the branch push and the PR.
  3. Look at the pushed branch: git --git-dir=%s log --all --oneline
  Knobs for the stand-ins (set before starting): ADBOT_STANDIN_REVIEW=pass|fail|fail-once,
  ADBOT_STANDIN_TESTS=fail-once, ADBOT_STANDIN_E2E=crash|crash-once|degenerate|slow=<s>.
  Start over: remove %s.

`, bare, source, agentCmd, strings.Join(lines, "\n"), port, WebhookRoute, payload, bare, dir)
	return nil
}

// pytestPython is the first of python3 on PATH and the system's
// /usr/bin/python3 that runs pytest (a version manager's python3 may lack
// the distribution's python3-pytest); python3 when neither does, and the
// cycle's test phase then says what to install.
func pytestPython() string {
	for _, py := range []string{"python3", "/usr/bin/python3"} {
		if exec.Command(py, "-m", "pytest", "--version").Run() == nil {
			return py
		}
	}
	return "python3"
}

// demoFixtures is the fixtures root for the demo remote: $ADBOT_FIXTURES,
// else ../shared/fixtures when it holds trtllm/, else "" (the skeleton).
func demoFixtures(env demoEnv) string {
	if v, ok := env.lookup("ADBOT_FIXTURES"); ok && v != "" {
		return v
	}
	cand := filepath.Join("..", "shared", "fixtures")
	if st, err := os.Stat(filepath.Join(cand, "trtllm")); err == nil && st.IsDir() {
		if abs, err := filepath.Abs(cand); err == nil {
			return abs
		}
	}
	return ""
}

// demoIssue is an issues.opened delivery asking to onboard Qwen/Qwen3-8B,
// for `adbot send`. Only the fields adbot reads are filled in.
const demoIssue = `{
  "action": "opened",
  "issue": {
    "number": 1,
    "title": "onboard Qwen/Qwen3-8B",
    "body": "Please onboard this model into AutoDeploy.",
    "state": "open",
    "author_association": "OWNER",
    "user": {"login": "` + DemoMaintainer + `", "id": 1001, "type": "User"}
  },
  "repository": {
    "id": 1,
    "name": "TensorRT-LLM",
    "full_name": "demo/TensorRT-LLM",
    "private": false,
    "default_branch": "main",
    "owner": {"login": "demo", "id": 1000, "type": "Organization"}
  },
  "sender": {"login": "` + DemoMaintainer + `", "id": 1001, "type": "User"},
  "installation": {"id": 1}
}
`
