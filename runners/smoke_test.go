package runners

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/nvidia/adbot/onboarding/comments"
	"github.com/nvidia/adbot/runners/proc"
)

// SmokeWorkflow is the runner tests' stand-in for a real workflow (a test
// double: adbot itself always runs the onboarding workflow). It proves a
// runner end to end by running harmless commands in the job's
// worktree on the cycle's GPUs (git status, git log, nvidia-smi -L when
// present) and posting their output as one [AGENT] comment.
type SmokeWorkflow struct{}

// Run runs the smoke cycle's two phases, "inspect" and "report".
func (SmokeWorkflow) Run(ctx context.Context, c *Cycle) error {
	var out strings.Builder
	err := c.Phase(ctx, "inspect", func(ctx context.Context) error {
		cmds := [][]string{
			{"git", "status", "--short", "--branch"},
			{"git", "log", "-1", "--format=%H %s"},
		}
		if _, err := exec.LookPath("nvidia-smi"); err == nil {
			cmds = append(cmds, []string{"nvidia-smi", "-L"})
		}
		for _, argv := range cmds {
			res, err := c.Exec(ctx, proc.Cmd{Name: argv[0] + "-" + argv[1], Args: argv, Timeout: time.Minute})
			if err != nil {
				return err
			}
			b, err := os.ReadFile(res.Stdout)
			if err != nil {
				return fmt.Errorf("read output of %s: %w", strings.Join(argv, " "), err)
			}
			fmt.Fprintf(&out, "$ %s\n%s\n", strings.Join(argv, " "), b)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return c.Phase(ctx, "report", func(ctx context.Context) error {
		intro := fmt.Sprintf("Runner `%s` took cycle %d of this job on GPUs [%s]. This is the runner's smoke workflow, not the onboarding workflow.",
			c.Runner, c.Msg.Number, joinInts(c.GPUs))
		_, err := c.Reporter.Comment(ctx, 0, "smoke/report", comments.Post{Title: "runner smoke check", Intro: intro, Log: out.String()})
		return err
	})
}
