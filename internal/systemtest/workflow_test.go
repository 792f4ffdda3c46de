package systemtest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/onboarding/comments"
	"github.com/nvidia/adbot/runners"
	"github.com/nvidia/adbot/runners/proc"
	"github.com/nvidia/adbot/runners/workspace"
)

// cycleRun is what the workflow saw of one cycle.
type cycleRun struct {
	Job      string
	Number   int
	Kind     bus.CycleKind
	Feedback []string
	// Done is set when Run returned, with Err what it returned.
	Done bool
	Err  error
}

// workflow behaves as the onboarding workflow will, without an agent or a
// GPU: phases through Cycle.Phase, an edit committed in the worktree, the
// job branch pushed with Cycle.Push, the pull request opened through the
// Reporter, the end-to-end log posted as [AGENT] comments (long enough to be
// split), a check run on the pushed head; a feedback cycle commits a change
// that answers each remark.
type workflow struct {
	mu   sync.Mutex
	runs []cycleRun
	// slow issues block in their e2e or feedback phase until the cycle is
	// stopped, or, with a channel, until it is closed (the step ends on its
	// own); entering the phase sends the issue on inSlow.
	slow   map[int]chan struct{}
	inSlow chan int
	// failOnce issues fail their first e2e run.
	failOnce map[int]bool
	// pushed tells the fake GitHub what the bare remote now holds.
	pushed func(branch, sha string)
}

func newWorkflow() *workflow {
	return &workflow{slow: map[int]chan struct{}{}, failOnce: map[int]bool{}, inSlow: make(chan int, 8), pushed: func(string, string) {}}
}

// slowDown makes issue's cycles block in their e2e phase until they are
// stopped or, when release is not nil, until it is closed.
func (w *workflow) slowDown(issue int, release chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.slow[issue] = release
}

func (w *workflow) isSlow(issue int) (bool, chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	release, ok := w.slow[issue]
	return ok, release
}

// cycles returns what the workflow saw of a job's cycles, in order.
func (w *workflow) cycles(key string) []cycleRun {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []cycleRun
	for _, r := range w.runs {
		if r.Job == key {
			out = append(out, r)
		}
	}
	return out
}

// Run implements runners.Workflow.
func (w *workflow) Run(ctx context.Context, c *runners.Cycle) (err error) {
	run := cycleRun{Job: c.Msg.JobKey, Number: c.Msg.Number, Kind: c.Msg.Kind}
	for _, f := range c.Msg.Feedback {
		run.Feedback = append(run.Feedback, f.Body)
	}
	w.mu.Lock()
	i := len(w.runs)
	w.runs = append(w.runs, run)
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.runs[i].Done, w.runs[i].Err = true, err
		w.mu.Unlock()
	}()
	if c.Msg.Kind == bus.KindFeedback {
		return w.answer(ctx, c)
	}
	return w.onboard(ctx, c)
}

func (w *workflow) onboard(ctx context.Context, c *runners.Cycle) error {
	model := c.Msg.ModelID
	err := c.Phase(ctx, "registry", func(ctx context.Context) error {
		f := filepath.Join(c.Worktree.Dir, "examples", "auto_deploy", "model_registry", "models.yaml")
		entry := fmt.Sprintf("# --- Qwen3 (Apr 2025) ---\n- name: %s\n  yaml_extra: [dashboard_default.yaml, world_size_%d.yaml]\n", model, c.Msg.GPUs)
		if b, err := os.ReadFile(f); err == nil && strings.Contains(string(b), "- name: "+model+"\n") {
			return nil // made by an earlier cycle of the job
		}
		if err := appendFile(f, entry); err != nil {
			return err
		}
		return commit(ctx, c, "[AutoDeploy] Onboard "+model+": model registry entry")
	})
	if err != nil {
		return err
	}
	var log string
	err = c.Phase(ctx, "e2e", func(ctx context.Context) error {
		if slow, release := w.isSlow(c.Msg.Issue); slow {
			w.inSlow <- c.Msg.Issue
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-release: // nil: never
			}
		}
		w.mu.Lock()
		fail := w.failOnce[c.Msg.Issue]
		delete(w.failOnce, c.Msg.Issue)
		w.mu.Unlock()
		if fail {
			return errors.New("build_and_run_ad.py exited 1: CUDA error: out of memory")
		}
		// A careless step echoes a credential: the Reporter must redact it.
		tok, err := c.Token(ctx, map[string]string{"contents": "read"})
		if err != nil {
			return err
		}
		// The run's output goes through the runner's process runner: kept
		// in the cycle's log files, streamed live and uploaded, redacted.
		res, err := c.Exec(ctx, proc.Cmd{Name: "build-and-run-ad", Args: []string{"cat"}, Stdin: strings.NewReader(e2eLog(model, tok))})
		if err != nil {
			return err
		}
		b, err := os.ReadFile(res.Stdout)
		if err != nil {
			return fmt.Errorf("read the run's log: %w", err)
		}
		log = string(b)
		return nil
	})
	if err != nil {
		return err
	}
	return c.Phase(ctx, "pull-request", func(ctx context.Context) error {
		head, err := w.push(ctx, c)
		if err != nil {
			return err
		}
		pr, err := c.Reporter.OpenPR(ctx, "pr", runners.NewPR{
			Title: "[AutoDeploy] Onboard " + model,
			Body:  fmt.Sprintf("Onboards `%s` into AutoDeploy.\n\nCloses #%d", model, c.Msg.Issue),
		})
		if err != nil {
			return err
		}
		if log == "" { // resumed after the e2e phase: its log is in the object store
			log = "(see the previous runner's log)"
		}
		if _, err := c.Reporter.Comment(ctx, pr, "e2e/log", comments.Post{
			Title: fmt.Sprintf("AutoDeploy end-to-end run, cycle %d", c.Msg.Number),
			Intro: "`build_and_run_ad.py --model " + model + "` answered every prompt.",
			Log:   log,
		}); err != nil {
			return err
		}
		_, err = c.Reporter.CheckRun(ctx, "e2e", runners.CheckRun{
			Name: "AutoDeploy end-to-end", HeadSHA: head, Status: "completed", Conclusion: "success",
			Title: "10 prompts answered", Summary: "The end-to-end run answered all 10 default prompts.",
		})
		return err
	})
}

// answer is a feedback cycle: one commit that answers every remark.
func (w *workflow) answer(ctx context.Context, c *runners.Cycle) error {
	return c.Phase(ctx, "feedback", func(ctx context.Context) error {
		if len(c.Msg.Feedback) == 0 {
			return errors.New("a feedback cycle without feedback")
		}
		if slow, release := w.isSlow(c.Msg.Issue); slow {
			w.inSlow <- c.Msg.Issue
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-release:
			}
		}
		var notes, msg strings.Builder
		fmt.Fprintf(&notes, "## Cycle %d\n", c.Msg.Number)
		fmt.Fprintf(&msg, "Address review feedback (cycle %d)\n\n", c.Msg.Number)
		for _, f := range c.Msg.Feedback {
			fmt.Fprintf(&notes, "- @%s (%s %d): %s\n", f.Author, f.Source, f.ID, f.Body)
			fmt.Fprintf(&msg, "- %s\n", f.Body)
		}
		f := filepath.Join(c.Worktree.Dir, "examples", "auto_deploy", "model_registry", "REVIEW_NOTES.md")
		if err := appendFile(f, notes.String()); err != nil {
			return err
		}
		if err := commit(ctx, c, msg.String()); err != nil {
			return err
		}
		head, err := w.push(ctx, c)
		if err != nil {
			return err
		}
		pr := c.Job().PR
		if pr == 0 {
			return errors.New("feedback cycle for a job without a pull request")
		}
		if _, err := c.Reporter.CommentText(ctx, pr, "feedback/answer",
			fmt.Sprintf("[AGENT] Cycle %d answered %d remark(s) in %s:\n\n%s", c.Msg.Number, len(c.Msg.Feedback), head, msg.String())); err != nil {
			return err
		}
		_, err = c.Reporter.CheckRun(ctx, "e2e", runners.CheckRun{
			Name: "AutoDeploy end-to-end", HeadSHA: head, Status: "completed", Conclusion: "success",
			Title: "10 prompts answered", Summary: "The end-to-end run answered all 10 default prompts.",
		})
		return err
	})
}

// push pushes the job branch and returns the head the job records.
func (w *workflow) push(ctx context.Context, c *runners.Cycle) (string, error) {
	if _, err := c.Push(ctx, false); err != nil {
		return "", err
	}
	head := c.Job().HeadSHA
	if head == "" {
		return "", errors.New("push recorded no head in the job")
	}
	w.pushed(c.Worktree.Branch, head)
	return head, nil
}

var author = []string{
	"GIT_AUTHOR_NAME=adbot", "GIT_AUTHOR_EMAIL=adbot@users.noreply.github.com",
	"GIT_COMMITTER_NAME=adbot", "GIT_COMMITTER_EMAIL=adbot@users.noreply.github.com",
}

func commit(ctx context.Context, c *runners.Cycle, msg string) error {
	if _, err := workspace.Git(ctx, c.Worktree.Dir, author, "add", "-A"); err != nil {
		return err
	}
	_, err := workspace.Git(ctx, c.Worktree.Dir, author, "commit", "--quiet", "-m", msg)
	return err
}

func appendFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	if _, err := f.WriteString(s); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// e2eLog is a build_and_run_ad.py log of about 150 KB: more than two comments hold.
func e2eLog(model, token string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[12/20/2025-03:35:41] [TRT-LLM AUTO-DEPLOY] [I] git remote set-url origin https://x-access-token:%s@github.com/NVIDIA/TensorRT-LLM.git\n", token)
	prompts := []string{"How big is the universe? ", "Where is the capital of Iceland? ", "What causes the northern lights? "}
	for i := range 1500 {
		fmt.Fprintf(&b, "[12/20/2025-03:35:50] [TRT-LLM AUTO-DEPLOY] [I] [PROMPT %d] %s: %s answers line %d of the run with a sentence long enough to fill the log.\n",
			i, prompts[i%len(prompts)], model, i)
	}
	return b.String()
}
