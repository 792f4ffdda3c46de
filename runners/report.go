package runners

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-github/v62/github"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/internal/ghretry"
	"github.com/nvidia/adbot/onboarding/comments"
)

// reportPermissions are what the Reporter's token may do.
var reportPermissions = map[string]string{"issues": "write", "pull_requests": "write", "checks": "write", "contents": "read"}

// keyMarker ends every body the Reporter posts, so that a resumed cycle can
// find what a dead runner posted but did not live to record.
func keyMarker(key string) string { return "\n<!-- adbot:key " + key + " -->" }

// markerRoom is what a key marker may take of a comment body.
const markerRoom = 200

// Reporter posts a cycle's results to GitHub. Every post carries an
// idempotency key: what it made is recorded in the job (Job.Posted), so a
// resumed cycle finds it instead of posting it again.
//
// A comment's key is recorded as "intended" before it is posted; a cycle that
// finds an intended key without a result looks for the key's marker among the
// issue's comments (an App's only) before posting. Pull requests are found by their head
// branch. Check runs carry the key as their external id.
type Reporter struct {
	c  *Cycle
	gh *github.Client
}

func newReporter(c *Cycle, hc *http.Client, apiURL string, p *pacer) *Reporter {
	cl := *hc
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	host := "api.github.com" // go-github's own base
	u, err := url.Parse(apiURL)
	if err == nil {
		host = u.Host
	}
	cl.Transport = ghretry.New(&ghTransport{
		base:  base,
		token: func(ctx context.Context) (string, error) { return c.Token(ctx, reportPermissions) },
		pace:  p,
		host:  host,
	}, ghretry.Options{MaxWait: 15 * time.Minute})
	gh := github.NewClient(&cl)
	if err == nil {
		gh.BaseURL = u
	}
	return &Reporter{c: c, gh: gh}
}

// Client is a GitHub client authenticated for the job's repository, for calls
// the Reporter does not wrap. Writes through it are paced but not idempotent.
func (r *Reporter) Client() *github.Client { return r.gh }

// fullKey scopes a caller's key to the cycle.
func (r *Reporter) fullKey(key string) string { return strconv.Itoa(r.c.Msg.Number) + "/" + key }

// Posted returns what the job record holds for key in this cycle (0: nothing).
func (r *Reporter) Posted(key string) int64 {
	j := r.c.Job()
	return j.Posted[r.fullKey(key)]
}

func (r *Reporter) record(ctx context.Context, fk string, v int64, also func(*bus.Job)) error {
	_, err := r.c.UpdateJob(ctx, func(j *bus.Job) error {
		if j.Posted == nil {
			j.Posted = map[string]int64{}
		}
		if j.Posted[fk] == v {
			return bus.ErrUnchanged
		}
		j.Posted[fk] = v
		if also != nil {
			also(j)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record %s: %w", fk, err)
	}
	return nil
}

const intended = -1

// Comment posts a log as one or more [AGENT] comments on issue or pull request
// number (0: the job's issue), split as comments.Split does, once per key.
// It returns the comment ids.
func (r *Reporter) Comment(ctx context.Context, number int, key string, p comments.Post) ([]int64, error) {
	if p.Limit == 0 {
		p.Limit = comments.MaxBody - markerRoom
	}
	// The token this post goes out with must be known to the redactor
	// before the text is cut and cleaned.
	if err := r.knowToken(ctx); err != nil {
		return nil, err
	}
	p.Title = r.c.redact.String(p.Title)
	p.Intro = r.c.redact.String(p.Intro)
	p.Log = r.c.redact.String(p.Log)
	bodies, err := comments.Split(p)
	if err != nil {
		return nil, fmt.Errorf("split comment %s: %w", key, err)
	}
	ids := make([]int64, 0, len(bodies))
	for i, body := range bodies {
		k := key
		if len(bodies) > 1 {
			k = fmt.Sprintf("%s#%d", key, i+1)
		}
		id, err := r.CommentText(ctx, number, k, body)
		if err != nil {
			return ids, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// CommentText posts body (given the [AGENT] prefix if it lacks it) once per key.
func (r *Reporter) CommentText(ctx context.Context, number int, key, body string) (int64, error) {
	if err := r.knowToken(ctx); err != nil {
		return 0, err
	}
	if number == 0 {
		number = r.c.Msg.Issue
	}
	fk := r.fullKey(key)
	switch id := r.c.Job().Posted[fk]; {
	case id > 0:
		return id, nil
	case id == intended:
		found, err := r.findComment(ctx, number, keyMarker(fk))
		if err != nil {
			return 0, err
		}
		if found > 0 {
			return found, r.record(ctx, fk, found, nil)
		}
	default:
		if err := r.record(ctx, fk, intended, nil); err != nil {
			return 0, err
		}
	}
	body = r.c.redact.String(body)
	if !strings.HasPrefix(body, "[AGENT]") {
		body = comments.Prefix + body
	}
	c, _, err := r.gh.Issues.CreateComment(ctx, r.c.Msg.Owner, r.c.Msg.Repo, number, &github.IssueComment{Body: github.String(body + keyMarker(fk))})
	if err != nil {
		return 0, fmt.Errorf("comment %s on %s/%s#%d: %w", key, r.c.Msg.Owner, r.c.Msg.Repo, number, err)
	}
	return c.GetID(), r.record(ctx, fk, c.GetID(), nil)
}

func (r *Reporter) findComment(ctx context.Context, number int, marker string) (int64, error) {
	opt := &github.IssueListCommentsOptions{ListOptions: github.ListOptions{PerPage: 100}}
	for {
		cs, resp, err := r.gh.Issues.ListComments(ctx, r.c.Msg.Owner, r.c.Msg.Repo, number, opt)
		if err != nil {
			return 0, fmt.Errorf("list comments on %s/%s#%d: %w", r.c.Msg.Owner, r.c.Msg.Repo, number, err)
		}
		for _, c := range cs {
			// Only an App writes as "<name>[bot]"; a person's comment that
			// copies the marker must not stand in for the bot's post.
			if strings.HasSuffix(c.GetBody(), marker) && strings.HasSuffix(c.GetUser().GetLogin(), "[bot]") {
				return c.GetID(), nil
			}
		}
		if resp.NextPage == 0 {
			return 0, nil
		}
		opt.Page = resp.NextPage
	}
}

// NewPR describes the pull request OpenPR opens from the job's branch.
type NewPR struct {
	Title, Body string
	// Base is the branch to merge into (the mirror's default branch when empty).
	Base  string
	Draft bool
}

// OpenPR opens the job's pull request from its branch once per key, or finds
// the one already open from that branch, records its number in the job, and
// returns it.
func (r *Reporter) OpenPR(ctx context.Context, key string, pr NewPR) (int, error) {
	fk := r.fullKey(key)
	if n := r.c.Job().Posted[fk]; n > 0 {
		return int(n), nil
	}
	owner, repo, branch := r.c.Msg.Owner, r.c.Msg.Repo, r.c.Worktree.Branch
	setPR := func(n int) func(*bus.Job) { return func(j *bus.Job) { j.PR = n } }
	open, _, err := r.gh.PullRequests.List(ctx, owner, repo, &github.PullRequestListOptions{Head: owner + ":" + branch, State: "all"})
	if err != nil {
		return 0, fmt.Errorf("look for pull request from %s: %w", branch, err)
	}
	for _, p := range open {
		if p.GetHead().GetRef() == branch {
			return p.GetNumber(), r.record(ctx, fk, int64(p.GetNumber()), setPR(p.GetNumber()))
		}
	}
	if pr.Base == "" {
		pr.Base = "main"
	}
	p, _, err := r.gh.PullRequests.Create(ctx, owner, repo, &github.NewPullRequest{
		Title: github.String(r.c.redact.String(pr.Title)),
		Head:  github.String(branch),
		Base:  github.String(pr.Base),
		Body:  github.String(r.c.redact.String(pr.Body) + keyMarker(fk)),
		Draft: github.Bool(pr.Draft),
	})
	if err != nil {
		return 0, fmt.Errorf("open pull request from %s: %w", branch, err)
	}
	return p.GetNumber(), r.record(ctx, fk, int64(p.GetNumber()), setPR(p.GetNumber()))
}

// CheckRun is a check run's content.
type CheckRun struct {
	Name    string
	HeadSHA string
	// Status: queued, in_progress or completed (then Conclusion: success, failure, ...).
	Status, Conclusion string
	Title, Summary     string
	Text               string
}

// CheckRun creates the check run for key, or updates the one created earlier.
func (r *Reporter) CheckRun(ctx context.Context, key string, cr CheckRun) (int64, error) {
	fk := r.fullKey(key)
	out := &github.CheckRunOutput{
		Title:   github.String(r.c.redact.String(cr.Title)),
		Summary: github.String(truncate(r.c.redact.String(cr.Summary), 65535)),
	}
	if cr.Text != "" {
		out.Text = github.String(truncate(r.c.redact.String(cr.Text), 65535))
	}
	var conclusion *string
	if cr.Status == "completed" {
		conclusion = github.String(cr.Conclusion)
	}
	if id := r.c.Job().Posted[fk]; id > 0 {
		_, _, err := r.gh.Checks.UpdateCheckRun(ctx, r.c.Msg.Owner, r.c.Msg.Repo, id, github.UpdateCheckRunOptions{
			Name: cr.Name, Status: github.String(cr.Status), Conclusion: conclusion, Output: out,
		})
		if err != nil {
			return 0, fmt.Errorf("update check run %s: %w", cr.Name, err)
		}
		return id, nil
	}
	run, _, err := r.gh.Checks.CreateCheckRun(ctx, r.c.Msg.Owner, r.c.Msg.Repo, github.CreateCheckRunOptions{
		Name: cr.Name, HeadSHA: cr.HeadSHA, ExternalID: github.String(fk),
		Status: github.String(cr.Status), Conclusion: conclusion, Output: out,
	})
	if err != nil {
		return 0, fmt.Errorf("create check run %s: %w", cr.Name, err)
	}
	return run.GetID(), r.record(ctx, fk, run.GetID(), nil)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-len("\n…(truncated)")] + "\n…(truncated)"
}

// knowToken fetches (or reuses) the token the Reporter's requests carry, so
// that the redactor knows it before any text is redacted for posting.
func (r *Reporter) knowToken(ctx context.Context) error {
	if r.c.tokens == nil {
		return nil
	}
	if _, err := r.c.Token(ctx, reportPermissions); err != nil {
		return fmt.Errorf("installation token: %w", err)
	}
	return nil
}
