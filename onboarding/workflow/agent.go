package workflow

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/nvidia/adbot/onboarding/agent"
)

// agentConfigPaths are the agent's configuration in a checkout. They are
// always taken from upstream's default branch, never from the job's branch
// or anything the agent wrote, and never committed.
var agentConfigPaths = []string{".claude", "CLAUDE.md"}

// agent runs the coding agent on prompt: a new session when fresh, else the
// job's session resumed. Its transcript is saved with the job, its use
// added to the budget, and its final text returned.
func (c *cycle) agent(ctx context.Context, step, prompt string, fresh bool) (string, error) {
	c.job = c.h.Job()
	if err := c.checkBudget(); err != nil {
		return "", err
	}
	if err := c.trustAgentConfig(ctx); err != nil {
		return "", err
	}
	o := c.w.opt
	opts := agent.Options{Prompt: prompt, MaxTurns: o.MaxTurns, Model: o.AgentModel, PermissionMode: o.PermissionMode,
		AllowedTools: o.AllowedTools, DisallowedTools: o.DisallowedTools}
	// A session lives on the host that ran it: resume only there.
	if !fresh && c.job.AgentSession != "" && (c.job.AgentHost == "" || c.job.AgentHost == c.job.Runner) {
		opts.Resume = c.job.AgentSession
	}
	if err := opts.Validate(); err != nil {
		return "", err
	}
	rec := AgentRun{Step: step, Prompt: prompt, Resumed: opts.Resume != ""}
	res, err := c.h.Exec(ctx, Cmd{Name: "agent-" + step, Args: append([]string{o.AgentCmd}, agent.Args(opts)...), Class: ClassAgent, Timeout: o.AgentTimeout})
	c.took(ClassAgent, res.Duration)
	if res.Stdout == "" {
		if err == nil {
			err = errors.New("no output")
		}
		return "", fmt.Errorf("agent (%s): %w", o.AgentCmd, err)
	}
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	name := fmt.Sprintf("cycle-%d/agent-%s.jsonl", c.job.Cycle, step)
	if serr := c.h.SaveLog(ctx, name, res.Stdout); serr != nil {
		return "", fmt.Errorf("save agent transcript: %w", serr)
	}
	rec.Transcript = name
	run, rerr := agent.ReadFile(res.Stdout, nil)
	if rerr != nil && run == nil {
		return "", fmt.Errorf("read agent output: %w", rerr)
	}
	rec.Session = run.SessionID
	if r := run.Result; r != nil {
		rec.Turns, rec.CostUSD, rec.Result = r.NumTurns, r.TotalCostUSD, r.Text
		rec.Duration = fmt.Sprintf("%.1fs", float64(r.DurationMS)/1000)
	}
	u := Usage{Turns: rec.Turns, CostUSD: rec.CostUSD}
	if !strings.HasPrefix(step, "review") && run.SessionID != "" {
		u.Session, u.Host = run.SessionID, c.job.Runner
	}
	if serr := c.h.Spend(ctx, u); serr != nil {
		return "", serr
	}
	c.job = c.h.Job()
	if !run.OK() {
		e := run.Err()
		if e == nil {
			e = fmt.Errorf("exit status %d", res.ExitCode)
		}
		if run.Result == nil {
			// No result line: why the process ended (a sandbox that could
			// not be built, a missing program) and what it said on stderr
			// are the only clues.
			if err != nil {
				e = fmt.Errorf("%w (%v)", e, err)
			}
			if msg := strings.TrimSpace(tail(readAll(res.Stderr), 1500)); msg != "" {
				e = fmt.Errorf("%w; stderr: %s", e, msg)
			}
		}
		rec.Error = e.Error()
		c.st.Agent = append(c.st.Agent, rec)
		if serr := c.save(ctx); serr != nil {
			return "", errors.Join(fmt.Errorf("agent (%s): %w", step, e), serr)
		}
		if opts.Resume != "" && run.Result == nil {
			// The session could not be resumed here: start afresh once.
			return c.agent(ctx, step+"-fresh", prompt, true)
		}
		return "", fmt.Errorf("agent (%s): %w", step, e)
	}
	c.st.Agent = append(c.st.Agent, rec)
	return rec.Result, c.save(ctx)
}

// trustAgentConfig puts the agent's configuration back as upstream's
// default branch has it: settings, skills and hooks from a pull request's
// branch or the agent's own edits never steer the agent.
func (c *cycle) trustAgentConfig(ctx context.Context) error {
	up := c.h.Worktree().Upstream
	for _, p := range agentConfigPaths {
		inUpstream := false
		if up != "" {
			out, err := c.git(ctx, "ls-tree", "--name-only", up, "--", p)
			if err != nil {
				return err
			}
			inUpstream = strings.TrimSpace(out) != ""
		}
		if _, err := c.git(ctx, "rm", "-r", "-q", "--cached", "--ignore-unmatch", "--", p); err != nil {
			return err
		}
		if err := os.RemoveAll(c.h.Worktree().Dir + "/" + p); err != nil {
			return fmt.Errorf("reset %s: %w", p, err)
		}
		if inUpstream {
			if _, err := c.git(ctx, "checkout", up, "--", p); err != nil {
				return err
			}
		}
	}
	return nil
}

// git runs git in the worktree and returns its standard output.
func (c *cycle) git(ctx context.Context, args ...string) (string, error) {
	name := "git"
	if len(args) > 0 {
		name = "git-" + args[0]
	}
	res, err := c.h.Exec(ctx, Cmd{Name: name, Args: append([]string{"git", "-c", "core.hooksPath=/dev/null"}, args...), Class: ClassTool,
		Env: []string{"GIT_TERMINAL_PROMPT=0"}})
	out, _ := os.ReadFile(res.Stdout)
	if err != nil {
		msg, _ := os.ReadFile(res.Stderr)
		return string(out), fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(msg)))
	}
	return string(out), nil
}

// commit commits every change in the worktree but the agent's
// configuration, as the App's bot; it reports whether there was anything.
func (c *cycle) commit(ctx context.Context, msg string) (bool, error) {
	if err := c.trustAgentConfig(ctx); err != nil {
		return false, err
	}
	args := []string{"add", "-A", "--", "."}
	for _, p := range agentConfigPaths {
		args = append(args, ":(exclude)"+p)
	}
	if _, err := c.git(ctx, args...); err != nil {
		return false, err
	}
	st, err := c.git(ctx, "diff", "--cached", "--name-only")
	if err != nil {
		return false, err
	}
	if strings.TrimSpace(st) == "" {
		return false, nil
	}
	o := c.w.opt
	if _, err := c.git(ctx, "-c", "user.name="+o.GitName, "-c", "user.email="+o.GitEmail, "commit", "-q", "--no-verify", "-m", msg); err != nil {
		return false, err
	}
	return true, nil
}

// head is the worktree's HEAD commit.
func (c *cycle) head(ctx context.Context) (string, error) {
	out, err := c.git(ctx, "rev-parse", "HEAD")
	return strings.TrimSpace(out), err
}
