package workflow

import (
	"context"
	"fmt"
	"strings"

	"github.com/nvidia/adbot/onboarding/comments"
	"github.com/nvidia/adbot/onboarding/e2e"
	"github.com/nvidia/adbot/onboarding/report"
	"github.com/nvidia/adbot/onboarding/review"
)

// files lists what the job's branch changed against upstream.
func (c *cycle) files(ctx context.Context) ([]report.File, error) {
	up := c.h.Worktree().Upstream
	if up == "" {
		up = c.h.Worktree().Base
	}
	out, err := c.git(ctx, "diff", "--name-status", "--no-renames", up+"...HEAD")
	if err != nil {
		return nil, err
	}
	var fs []report.File
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		action := map[string]string{"A": "created", "M": "modified", "D": "deleted"}[f[0]]
		if action == "" {
			action = "changed"
		}
		fs = append(fs, report.File{Path: f[1], Action: action})
	}
	return fs, nil
}

func (c *cycle) reviewResult() report.ReviewResult {
	rr := report.ReviewResult{Iterations: c.st.Review.Rounds}
	if rv, err := review.Parse(c.st.Review.Verdict); err == nil {
		rr.Review = rv
	}
	return rr
}

func (c *cycle) pytestReport() report.Pytest {
	p := c.st.Pytest
	return report.Pytest{Command: p.Command, Output: p.Output, SummaryLine: p.Summary, Commit: p.Commit}
}

// summary is Phase 12: the report, on the issue.
func (c *cycle) summary(ctx context.Context) error {
	fs, err := c.files(ctx)
	if err != nil {
		return err
	}
	c.st.Files = fs
	var tricky []string
	for _, n := range c.st.Checks {
		if strings.Contains(n, "no ") || strings.Contains(n, "never") {
			tricky = append(tricky, n)
		}
	}
	in := report.SummaryInput{
		ModelID: c.job.ModelID, Architecture: c.job.Architecture,
		Overview: fmt.Sprintf("%s (%s), onboarded by runner %s in cycle %d.", c.job.ModelID, c.st.Gather.Plan, c.job.Runner, c.job.Cycle),
		Features: c.st.Checks, Tricky: tricky, Files: fs, Tests: c.st.Pytest.Tests,
		Review:         c.reviewResult(),
		E2E:            report.E2E{Verdict: c.verdict(), Iterations: c.st.E2E.Runs, GPUs: c.st.E2E.GPUs},
		RegistryEntry:  strings.Join(c.st.Registry, "\n"),
		RegistryAction: "see entry",
		Configs:        []string{report.ConfigPath(c.st.ConfigName)},
		ConfigYAML:     c.st.ConfigName,
		Cookbook:       strings.Join(c.st.Docs, "\n"),
		TestFile:       c.st.TestFile, Pytest: c.pytestReport(),
	}
	bodies, err := report.SummaryComments(in)
	if err != nil {
		return fmt.Errorf("summary: %w", err)
	}
	for i, b := range bodies {
		if _, err := c.h.Comment(ctx, 0, fmt.Sprintf("summary#%d", i+1), comments.Post{Intro: b}); err != nil {
			return err
		}
	}
	return nil
}

func (c *cycle) verdict() e2e.Verdict {
	return e2e.Verdict{OK: c.st.E2E.OK, Reason: c.st.E2E.Reason, Pairs: c.st.E2E.Pairs}
}

// pullRequest is Phase 13 (and an update cycle's push): commit what is
// left, rebase onto upstream's default branch, push the job's branch, open
// or update the pull request with the verbatim outputs, check runs on the
// head, and the complete logs as [AGENT] comments.
func (c *cycle) pullRequest(ctx context.Context) error {
	if _, err := c.commit(ctx, "[AutoDeploy] Onboard "+c.job.ModelID); err != nil {
		return err
	}
	before, err := c.head(ctx)
	if err != nil {
		return err
	}
	if up := c.h.Worktree().Upstream; up != "" {
		if _, err := c.git(ctx, "-c", "user.name="+c.w.opt.GitName, "-c", "user.email="+c.w.opt.GitEmail, "rebase", "-q", up); err != nil {
			_, _ = c.git(ctx, "rebase", "--abort")
			return fmt.Errorf("rebase onto %s: %w (resolve by hand, then /onboard retry)", up, err)
		}
	}
	head, err := c.h.Push(ctx, true)
	if err != nil {
		return err
	}
	if head != before {
		// The rebase moved the branch: what was tested is the content, and
		// the logs below name the commit they ran on.
		c.st.Checks = append(c.st.Checks, fmt.Sprintf("rebase: tested %s, pushed %s after rebasing onto upstream", shortSHA(before), shortSHA(head)))
	}
	fs, err := c.files(ctx)
	if err != nil {
		return err
	}
	in := report.PRInput{
		ModelID: c.job.ModelID, Architecture: c.job.Architecture,
		Overview: fmt.Sprintf("Onboards [`%s`](https://huggingface.co/%s) into AutoDeploy. Opened for #%d.", c.job.ModelID, c.job.ModelID, c.job.Issue),
		Files:    fs, ConfigYAML: c.st.ConfigName, GPUs: c.st.E2E.GPUs, Pairs: c.st.E2E.Pairs, E2EReason: c.st.E2E.Reason,
		TestFile: c.st.TestFile, Pytest: c.pytestReport(), Review: c.reviewResult(),
	}
	body, extra := report.PRBody(in)
	pr := PR{Title: report.PRTitle(in), Body: body}
	n := c.job.PR
	if n == 0 {
		if n, err = c.h.OpenPR(ctx, "pr", pr); err != nil {
			return err
		}
	}
	if err := c.h.EditPR(ctx, n, pr); err != nil {
		return err
	}
	for i, p := range extra {
		if _, err := c.h.Comment(ctx, n, fmt.Sprintf("pr-extra#%d", i+1), p); err != nil {
			return err
		}
	}
	// The complete logs, never cut: split across comments when long.
	if _, err := c.h.Comment(ctx, n, "pairs", comments.Post{Title: "End-to-end prompt → output pairs",
		Intro: fmt.Sprintf("`%s` on commit `%s`: %s", c.st.E2E.Command, shortSHA(c.st.E2E.Commit), c.st.E2E.Reason),
		Log:   report.PairsText(c.st.E2E.Pairs)}); err != nil {
		return err
	}
	if _, err := c.h.Comment(ctx, n, "pytest", comments.Post{Title: "Unit tests: " + c.st.Pytest.Summary,
		Intro: fmt.Sprintf("`%s` on commit `%s`", c.st.Pytest.Command, shortSHA(c.st.Pytest.Commit)), Log: c.st.Pytest.Output}); err != nil {
		return err
	}
	conclusion := map[bool]string{true: "success", false: "failure"}
	if err := c.h.CheckRun(ctx, "check-tests", CheckRun{Name: "adbot / unit tests", HeadSHA: head, Status: "completed",
		Conclusion: conclusion[c.st.Pytest.Passed], Title: c.st.Pytest.Summary,
		Summary: "`" + c.st.Pytest.Command + "`", Text: "```text\n" + c.st.Pytest.Output + "\n```"}); err != nil {
		return err
	}
	return c.h.CheckRun(ctx, "check-e2e", CheckRun{Name: "adbot / end-to-end", HeadSHA: head, Status: "completed",
		Conclusion: conclusion[c.st.E2E.OK], Title: c.st.E2E.Reason,
		Summary: "`" + c.st.E2E.Command + "`", Text: "```text\n" + report.PairsText(c.st.E2E.Pairs) + "\n```"})
}

// updatePhases answer one feedback batch: the agent resumes with every
// remark, tests and the end-to-end run again, the push, and a reply in each
// thread.
func (c *cycle) updatePhases() []phase {
	return []phase{
		{PhaseFeedback, c.answerFeedback},
		{PhaseTests, c.testGate},
		{PhaseE2E, c.updateE2E},
		{PhasePR, c.pullRequest},
		{PhaseReply, c.reply},
	}
}

func (c *cycle) answerFeedback(ctx context.Context) error {
	fb := c.st.Work.Feedback
	if len(fb) == 0 {
		return nil
	}
	if _, err := c.agent(ctx, "feedback", feedbackPrompt(c.job, c.st, fb), false); err != nil {
		return err
	}
	var who []string
	for _, f := range fb {
		who = append(who, "@"+f.Author)
	}
	_, err := c.commit(ctx, fmt.Sprintf("[AutoDeploy] Address review feedback on %s (%s)", c.job.ModelID, strings.Join(uniq(who), ", ")))
	return err
}

// updateE2E runs the whole model again (the reduced run proved the wiring
// in the onboarding cycle).
func (c *cycle) updateE2E(ctx context.Context) error { return c.runUntilPass(ctx, 0) }

// reply answers each remark in its thread with what changed and the new
// results, and marks it handled with a 👍.
func (c *cycle) reply(ctx context.Context) error {
	head := c.job.HeadSHA
	if j := c.h.Job(); j.HeadSHA != "" {
		head = j.HeadSHA
	}
	changed := "no file changed"
	if len(c.st.Agent) > 0 {
		if last := c.st.Agent[len(c.st.Agent)-1]; last.Result != "" {
			changed = last.Result
		}
	}
	for _, f := range c.st.Work.Feedback {
		body := fmt.Sprintf("Addressed in `%s`.\n\n%s\n\n- Unit tests: %s\n- End-to-end: %s\n\nThe complete logs are in the [AGENT] comments below this cycle's push.",
			shortSHA(head), quote(changed), c.st.Pytest.Summary, c.st.E2E.Reason)
		if _, err := c.h.Reply(ctx, fmt.Sprintf("reply-%s-%d", f.Source, f.ID), f, body); err != nil {
			return err
		}
		if err := c.h.React(ctx, f, "+1"); err != nil {
			return err
		}
	}
	return nil
}

func quote(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 4000 {
		s = s[:4000] + "…"
	}
	return "> " + strings.ReplaceAll(s, "\n", "\n> ")
}

func uniq(xs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
