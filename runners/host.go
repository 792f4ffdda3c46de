package runners

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-github/v62/github"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/onboarding/comments"
	"github.com/nvidia/adbot/onboarding/workflow"
	"github.com/nvidia/adbot/runners/proc"
)

// Host is the cycle as the onboarding workflow sees it (workflow.Host).
func (c *Cycle) Host() workflow.Host { return cycleHost{c} }

// Onboarding runs the onboarding workflow w in the runner's cycles.
func Onboarding(w *workflow.Workflow) Workflow {
	return WorkflowFunc(func(ctx context.Context, c *Cycle) error { return w.Run(ctx, c.Host()) })
}

// cycleHost implements workflow.Host on a Cycle.
type cycleHost struct{ c *Cycle }

var _ workflow.Host = cycleHost{}

func (h cycleHost) Job() workflow.Job {
	j := h.c.Job()
	m := h.c.Msg
	out := workflow.Job{
		Key: j.Key, Owner: j.Owner, Repo: j.Repo, Issue: j.Issue, ModelID: j.ModelID, Revision: j.Revision,
		Architecture: j.Architecture, Params: j.Params, GPUs: j.GPUs, RemoteCode: j.RemoteCode, Requester: j.Requester,
		Cycle: m.Number, Kind: workflow.CycleKind(m.Kind), PR: j.PR, Branch: j.Branch, HeadSHA: j.HeadSHA,
		AgentSession: j.AgentSession, AgentHost: j.AgentHost, Runner: h.c.Runner,
		Used:      workflow.Usage{Turns: j.BudgetTurns, CostUSD: j.BudgetUSD, Wall: j.BudgetWall + time.Since(h.c.Started)},
		Proceeded: j.Proceeded,
	}
	for _, f := range m.Feedback {
		out.Feedback = append(out.Feedback, workflow.Feedback{Source: f.Source, ID: f.ID, Author: f.Author, Body: f.Body, Path: f.Path, Line: f.Line, URL: f.URL})
	}
	return out
}

func (h cycleHost) Worktree() workflow.Worktree {
	wt := h.c.Worktree
	return workflow.Worktree{Dir: wt.Dir, Branch: wt.Branch, Base: wt.Base, Upstream: h.c.upstream}
}

func (h cycleHost) GPUs() []workflow.GPU {
	var out []workflow.GPU
	for _, d := range h.c.devices {
		out = append(out, workflow.GPU{Index: d.Index, Name: d.Name, MemTotal: d.MemTotal, MemFree: d.MemFree})
	}
	return out
}

func (h cycleHost) Phase(ctx context.Context, name string, fn func(context.Context) error) error {
	return h.c.Phase(ctx, name, fn)
}

// stateObject is where a job's workflow state lives in the log object store.
func stateObject(job string) string { return job + "/workflow-state.json" }

func (h cycleHost) LoadState(ctx context.Context) ([]byte, error) {
	b, err := h.c.res.Logs.GetBytes(ctx, stateObject(h.c.Msg.JobKey))
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", stateObject(h.c.Msg.JobKey), err)
	}
	return b, nil
}

func (h cycleHost) SaveState(ctx context.Context, data []byte) error {
	if err := h.c.checkLease(); err != nil {
		return err
	}
	if _, err := h.c.res.Logs.PutBytes(ctx, stateObject(h.c.Msg.JobKey), data); err != nil {
		return fmt.Errorf("write %s: %w", stateObject(h.c.Msg.JobKey), err)
	}
	return nil
}

func (h cycleHost) SaveLog(ctx context.Context, name, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("save log %s: %w", name, err)
	}
	defer f.Close()
	obj := h.c.Msg.JobKey + "/" + name
	if _, err := h.c.res.Logs.Put(ctx, jetstream.ObjectMeta{Name: obj}, f); err != nil {
		return fmt.Errorf("save log %s: %w", obj, err)
	}
	return nil
}

func (h cycleHost) Exec(ctx context.Context, cmd workflow.Cmd) (workflow.Result, error) {
	dir := cmd.Dir
	if dir != "" && !filepath.IsAbs(dir) {
		dir = filepath.Join(h.c.Worktree.Dir, dir)
	}
	env := cmd.Env
	if cmd.Class == workflow.ClassAgent && h.c.agentHome != "" {
		// The agent keeps its sessions per job on this host, so that a
		// later cycle here can resume them.
		env = append(append([]string(nil), env...), "CLAUDE_CONFIG_DIR="+h.c.agentHome)
	}
	res, err := h.c.Exec(ctx, proc.Cmd{Name: cmd.Name, Args: cmd.Args, Dir: dir, Env: env, Timeout: cmd.Timeout, Sandbox: h.c.policy(cmd.Class, firstArg(cmd.Args))})
	return workflow.Result{ExitCode: res.ExitCode, TimedOut: res.TimedOut, Duration: res.Duration, Stdout: res.Stdout, Stderr: res.Stderr}, err
}

func (h cycleHost) ScratchDir() string { return h.c.scratch }

func (h cycleHost) Push(ctx context.Context, force bool) (string, error) {
	res, err := h.c.Push(ctx, force)
	if err != nil {
		msg, _ := os.ReadFile(res.Stderr)
		return "", fmt.Errorf("push %s: %w: %s", h.c.Worktree.Branch, err, strings.TrimSpace(h.c.redactString(string(msg))))
	}
	return h.c.Job().HeadSHA, nil
}

func (h cycleHost) Comment(ctx context.Context, number int, key string, p comments.Post) ([]int64, error) {
	return h.c.Reporter.Comment(ctx, number, key, p)
}

func (h cycleHost) OpenPR(ctx context.Context, key string, pr workflow.PR) (int, error) {
	base := pr.Base
	if base == "" {
		base = strings.TrimPrefix(h.c.upstream, "refs/remotes/origin/")
	}
	return h.c.Reporter.OpenPR(ctx, key, NewPR{Title: pr.Title, Body: pr.Body, Base: base, Draft: pr.Draft})
}

func (h cycleHost) EditPR(ctx context.Context, number int, pr workflow.PR) error {
	return h.c.Reporter.EditPR(ctx, number, pr.Title, pr.Body)
}

func (h cycleHost) Reply(ctx context.Context, key string, to workflow.Feedback, body string) (int64, error) {
	r := h.c.Reporter
	pr := h.c.Job().PR
	if to.Source == "review_comment" && to.ID != 0 && pr != 0 {
		return r.ReplyInThread(ctx, key, pr, to.ID, body)
	}
	// A PR comment or a review has no thread to reply in: answer on the
	// pull request, quoting whom it answers.
	lead := fmt.Sprintf("@%s", to.Author)
	if to.URL != "" {
		lead += fmt.Sprintf(" ([remark](%s))", to.URL)
	}
	return r.CommentText(ctx, pr, key, comments.Prefix+lead+": "+body)
}

func (h cycleHost) React(ctx context.Context, to workflow.Feedback, content string) error {
	return h.c.Reporter.React(ctx, to.Source, to.ID, content)
}

func (h cycleHost) CheckRun(ctx context.Context, key string, cr workflow.CheckRun) error {
	_, err := h.c.Reporter.CheckRun(ctx, key, CheckRun{Name: cr.Name, HeadSHA: cr.HeadSHA, Status: cr.Status, Conclusion: cr.Conclusion,
		Title: cr.Title, Summary: cr.Summary, Text: cr.Text})
	return err
}

func (h cycleHost) Spend(ctx context.Context, u workflow.Usage) error {
	_, err := h.c.UpdateJob(ctx, func(j *bus.Job) error {
		j.BudgetTurns += u.Turns
		j.BudgetUSD += u.CostUSD
		if u.Session != "" {
			j.AgentSession, j.AgentHost = u.Session, u.Host
		}
		return nil
	})
	return err
}

// checkLease fails once another runner holds the job.
func (c *Cycle) checkLease() error {
	j := c.Job()
	if j.Runner != "" && (j.Runner != c.Runner || j.Cycle != c.Msg.Number) {
		return fmt.Errorf("job %s is now with runner %q: %w", j.Key, j.Runner, ErrLeaseLost)
	}
	return nil
}

// EditPR rewrites the pull request's title and body (the body keeps the
// key marker of the opening post).
func (r *Reporter) EditPR(ctx context.Context, number int, title, body string) error {
	fk := r.fullKey("pr")
	for k, v := range r.c.Job().Posted {
		if strings.HasSuffix(k, "/pr") && v == int64(number) {
			fk = k
		}
	}
	_, _, err := r.gh.PullRequests.Edit(ctx, r.c.Msg.Owner, r.c.Msg.Repo, number, &github.PullRequest{
		Title: github.String(r.c.redact.String(title)),
		Body:  github.String(r.c.redact.String(body) + keyMarker(fk)),
	})
	if err != nil {
		return fmt.Errorf("edit pull request #%d: %w", number, err)
	}
	return nil
}

// ReplyInThread answers review comment id on pull request number in its
// thread, once per key. The intent is recorded before the post; an intended
// reply whose post was never recorded is posted again, since the API subset
// the bot uses has no listing of review comments to find it in: a crash
// between the post and its record can repeat that one reply.
func (r *Reporter) ReplyInThread(ctx context.Context, key string, number int, id int64, body string) (int64, error) {
	fk := r.fullKey(key)
	switch got := r.c.Job().Posted[fk]; {
	case got > 0:
		return got, nil
	case got != intended:
		if err := r.record(ctx, fk, intended, nil); err != nil {
			return 0, err
		}
	}
	text := r.c.redact.String(body)
	if !strings.HasPrefix(text, "[AGENT]") {
		text = comments.Prefix + text
	}
	// GitHub's "create a reply for a review comment"; go-github's
	// CreateCommentInReplyTo uses the older in_reply_to form instead.
	req, err := r.gh.NewRequest(http.MethodPost, fmt.Sprintf("repos/%s/%s/pulls/%d/comments/%d/replies",
		url.PathEscape(r.c.Msg.Owner), url.PathEscape(r.c.Msg.Repo), number, id), map[string]string{"body": text + keyMarker(fk)})
	if err != nil {
		return 0, fmt.Errorf("reply to review comment %d on #%d: %w", id, number, err)
	}
	c := new(github.PullRequestComment)
	if _, err := r.gh.Do(ctx, req, c); err != nil {
		return 0, fmt.Errorf("reply to review comment %d on #%d: %w", id, number, err)
	}
	return c.GetID(), r.record(ctx, fk, c.GetID(), nil)
}

// React puts a reaction on a remark: an issue comment or a review line
// comment (a review itself takes none). GitHub answers 200 for a reaction
// that exists, so it is safe to repeat.
func (r *Reporter) React(ctx context.Context, source string, id int64, content string) error {
	if id == 0 {
		return nil
	}
	o, rp := r.c.Msg.Owner, r.c.Msg.Repo
	var err error
	switch source {
	case "issue_comment":
		_, _, err = r.gh.Reactions.CreateIssueCommentReaction(ctx, o, rp, id, content)
	case "review_comment":
		_, _, err = r.gh.Reactions.CreatePullRequestCommentReaction(ctx, o, rp, id, content)
	default:
		return nil
	}
	if err != nil {
		return fmt.Errorf("react %s to %s %d: %w", content, source, id, err)
	}
	return nil
}

func firstArg(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}
