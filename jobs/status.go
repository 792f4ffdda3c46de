package jobs

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v62/github"
	"github.com/rs/zerolog"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/onboarding/statuscomment"
)

const agentPrefix = statuscomment.Prefix

// view renders j's status comment as the worker sees it. A queued job shows
// its place in the queue and why it waits, as of the worker's last look at
// the queue (see queueCache).
func (w *Worker) view(ctx context.Context, j *bus.Job) string {
	v := statuscomment.FromJob(j, j.Running, w.d.Now())
	q := w.queueOf(ctx, j)
	v.QueuePosition = q.Position
	v.Note = withReason(v.Note, q.Reason)
	return statuscomment.Render(v)
}

// withReason adds why a queued job waits to its note, unless the note
// already says (a runner that gave a cycle back writes its own reason).
func withReason(note, reason string) string {
	switch {
	case reason == "" || strings.HasPrefix(note, "waiting for"):
		return note
	case note == "":
		return reason
	}
	return note + "; " + reason
}

// Posting a job's one status comment. The job record says whether posting
// may have begun: the onboard command writes the job (with its
// "cmd/<delivery>/created" mark) before it posts, and records the comment's id
// afterwards, in the same compare-and-swap that queues the first cycle. So a
// command that has just written the job posts at once, without reading the
// issue's comments; only a later attempt of the same delivery, finding the
// job written but no id recorded (the earlier attempt may have died between
// posting and recording), first looks for the bot's comment carrying the
// job's marker (statuscomment.Marker) and adopts it.

// postStatusComment posts body as j's status comment and returns its id, or,
// when search is set, first looks for one posted by an earlier attempt and
// returns that (with posted false: it may read differently from body).
func (w *Worker) postStatusComment(ctx context.Context, gh *github.Client, j *bus.Job, search bool, body string) (id int64, posted bool, err error) {
	if search {
		id, err := w.findStatusComment(ctx, gh, j)
		if err != nil || id != 0 {
			return id, false, err
		}
	}
	id, err = w.comment(ctx, gh, j.Owner, j.Repo, j.Issue, body)
	return id, err == nil, err
}

// ensureStatusComment gives j its one status comment and records it: the one
// recorded, else (search) one of the bot's on the issue that carries the
// job's marker, else a new one.
func (w *Worker) ensureStatusComment(ctx context.Context, gh *github.Client, j *bus.Job, search bool) error {
	if j.StatusCommentID != 0 {
		return nil
	}
	id, _, err := w.postStatusComment(ctx, gh, j, search, w.view(ctx, j))
	if err != nil {
		return err
	}
	return w.recordStatusComment(ctx, j, id)
}

// recordStatusComment records id as j's status comment unless one is
// recorded already, and updates j.
func (w *Worker) recordStatusComment(ctx context.Context, j *bus.Job, id int64) error {
	updated, err := bus.UpdateJob(ctx, w.d.Bus.Jobs, j.Key, func(cur *bus.Job) error {
		if cur.StatusCommentID != 0 {
			return bus.ErrUnchanged
		}
		cur.StatusCommentID = id
		return nil
	})
	if err != nil {
		return err
	}
	*j = *updated
	return nil
}

// findStatusComment looks for j's status comment among the issue's comments:
// the crash-recovery path of postStatusComment.
func (w *Worker) findStatusComment(ctx context.Context, gh *github.Client, j *bus.Job) (int64, error) {
	marker := statuscomment.Marker(j.Key)
	opt := &github.IssueListCommentsOptions{ListOptions: github.ListOptions{PerPage: 100}}
	for {
		cs, resp, err := gh.Issues.ListComments(ctx, j.Owner, j.Repo, j.Issue, opt)
		if err != nil {
			return 0, fmt.Errorf("list comments of %s/%s#%d: %w", j.Owner, j.Repo, j.Issue, err)
		}
		for _, c := range cs {
			if strings.HasPrefix(c.GetBody(), agentPrefix) && strings.Contains(c.GetBody(), marker) &&
				!c.GetCreatedAt().Before(j.Created.Truncate(time.Second)) {
				return c.GetID(), nil
			}
		}
		if resp.NextPage == 0 {
			return 0, nil
		}
		opt.Page = resp.NextPage
	}
}

// refreshStatus edits j's status comment to show j now. A job without one
// yet is left alone: only the onboard command that made the job posts it, so
// that commands carried out side by side never post two.
//
// Commands and the status writer (WatchStatus) both come here, and edits
// of one job's comment go one at a time, each showing the job's newest
// record: so the comment never goes back to an older state (a "running"
// rendered before a cancel, sent after it).
func (w *Worker) refreshStatus(ctx context.Context, gh *github.Client, j *bus.Job) error {
	if j.StatusCommentID == 0 {
		return nil
	}
	l := w.edits.lock(j.Key)
	defer l.mu.Unlock()
	cur, rev, err := bus.GetJob(ctx, w.d.Bus.Jobs, j.Key)
	if err != nil {
		return err
	}
	if cur.StatusCommentID == 0 || rev < l.rev {
		return nil
	}
	body := w.view(ctx, cur)
	if rev == l.rev && body == l.body {
		return nil // shown already
	}
	if err := w.refreshStatusWith(ctx, gh, cur, body); err != nil {
		return err
	}
	l.rev, l.body = rev, body
	return nil
}

// statusEdits serializes the edits of each job's status comment and
// remembers what each last showed.
type statusEdits struct {
	mu sync.Mutex
	m  map[string]*statusEdit
}

type statusEdit struct {
	mu   sync.Mutex
	rev  uint64
	body string
}

// lock returns key's edit record, locked.
func (s *statusEdits) lock(key string) *statusEdit {
	s.mu.Lock()
	if s.m == nil {
		s.m = map[string]*statusEdit{}
	}
	e := s.m[key]
	if e == nil {
		e = &statusEdit{}
		s.m[key] = e
	}
	s.mu.Unlock()
	e.mu.Lock()
	return e
}

// refreshStatusWith edits j's status comment to body (posting a new one if
// someone deleted it).
func (w *Worker) refreshStatusWith(ctx context.Context, gh *github.Client, j *bus.Job, body string) error {
	_, resp, err := gh.Issues.EditComment(ctx, j.Owner, j.Repo, j.StatusCommentID, &github.IssueComment{Body: &body})
	if resp != nil && resp.StatusCode == 404 {
		// Someone deleted it: post a new one.
		zerolog.Ctx(ctx).Info().Str(bus.LogKeyJob, j.Key).Msg("Status comment gone; posting a new one")
		j.StatusCommentID = 0
		if _, err := bus.UpdateJob(ctx, w.d.Bus.Jobs, j.Key, func(cur *bus.Job) error {
			cur.StatusCommentID = 0
			return nil
		}); err != nil {
			return err
		}
		return w.ensureStatusComment(ctx, gh, j, true)
	}
	if err != nil {
		return fmt.Errorf("edit status comment of %s: %w", j.Key, err)
	}
	return nil
}
