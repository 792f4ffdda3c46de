package sandbox_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nvidia/adbot/internal/golden"
	"github.com/nvidia/adbot/runners/sandbox"
)

// TestCommandGolden keeps each class's bwrap argument vector for review, on a
// made-up host under $ROOT.
func TestCommandGolden(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"usr", "etc/ssh", "data/worktrees/job-1", "data/scratch/job-1", "hf", "venv", "claude/job-1"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"dev/nvidia0", "dev/nvidia1", "dev/nvidia2", "dev/nvidiactl", "dev/nvidia-uvm", "dev/nvidia-uvm-tools", "etc/app.pem", "adbot", "egress.sock"} {
		p := filepath.Join(root, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("usr/bin", filepath.Join(root, "bin")); err != nil {
		t.Fatal(err)
	}
	at := func(p string) string { return filepath.Join(root, p) }
	spec := sandbox.Spec{
		Worktree: at("data/worktrees/job-1"), Scratch: at("data/scratch/job-1"),
		ReadOnly: []string{at("hf"), at("venv")},
		Hidden:   []string{at("data"), at("etc/app.pem"), at("etc/ssh"), at("etc/nats.creds")},
		GPUs:     []int{0, 2}, DevDir: at("dev"),
	}
	agentSpec := spec
	agentSpec.Writable = []string{at("claude/job-1")}
	agent := sandbox.Agent(agentSpec, at("egress.sock"), "")
	agent.Forwarder = at("adbot")
	for _, tc := range []struct {
		name string
		p    *sandbox.Policy
		args []string
	}{
		{"agent", agent, []string{"claude", "-p", "onboard it", "--output-format", "stream-json", "--verbose"}},
		{"test", sandbox.Test(spec), []string{"python", "-m", "pytest", "tests/unittest"}},
		{"e2e", sandbox.E2E(spec), []string{"python", "examples/auto_deploy/build_and_run_ad.py", "--model", "Qwen/Qwen3-0.6B"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.p.System = []string{at("usr"), at("bin"), at("etc"), at("absent")}
			argv, err := tc.p.Command("bwrap", tc.args, "")
			if err != nil {
				t.Fatal(err)
			}
			// One option a line up to the first "--", then the command, quoted.
			var b strings.Builder
			cmd := false
			for i, a := range argv {
				a = strings.ReplaceAll(a, root, "$ROOT")
				switch {
				case cmd:
					fmt.Fprintf(&b, " %q", a)
				case i > 0 && a == "--":
					cmd = true
					b.WriteString("\n--")
				case i > 0 && strings.HasPrefix(a, "--"):
					b.WriteString("\n" + a)
				case i > 0:
					b.WriteString(" " + a)
				default:
					b.WriteString(a)
				}
			}
			b.WriteString("\n")
			golden.Check(t, "command-"+tc.name+".txt", []byte(b.String()))
		})
	}
}

func TestCommandRefuses(t *testing.T) {
	root := t.TempDir()
	wt, scratch := filepath.Join(root, "wt"), filepath.Join(root, "scratch")
	for _, d := range []string{wt, scratch} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		spec sandbox.Spec
		want string
	}{
		{"no worktree", sandbox.Spec{Scratch: scratch}, "worktree"},
		{"missing scratch", sandbox.Spec{Worktree: wt, Scratch: filepath.Join(root, "nope")}, "scratch dir"},
		{"relative read-only", sandbox.Spec{Worktree: wt, Scratch: scratch, ReadOnly: []string{"hf"}}, "not absolute"},
		{"hidden worktree", sandbox.Spec{Worktree: wt, Scratch: scratch, Hidden: []string{wt}}, "both bound and hidden"},
		{"missing gpu", sandbox.Spec{Worktree: wt, Scratch: scratch, GPUs: []int{3}, DevDir: root}, "gpu 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sandbox.Test(tc.spec).Command("bwrap", []string{"true"}, "")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
	t.Run("agent without its proxy socket", func(t *testing.T) {
		_, err := sandbox.Agent(sandbox.Spec{Worktree: wt, Scratch: scratch}, filepath.Join(root, "gone.sock"), "").Command("bwrap", []string{"true"}, "")
		if err == nil || !strings.Contains(err.Error(), "egress proxy socket") {
			t.Errorf("err = %v, want one about the egress proxy socket", err)
		}
	})
}
