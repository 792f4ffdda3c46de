package jobs

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-github/v62/github"
	"github.com/rs/zerolog"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/onboarding/sizing"
	"github.com/nvidia/adbot/onboarding/statuscomment"
)

const agentPrefix = statuscomment.Prefix

// view renders j's status comment as the worker sees it.
func (w *Worker) view(ctx context.Context, j *bus.Job) string {
	v := statuscomment.FromJob(j, "", w.d.Now())
	v.QueuePosition = w.queuePosition(ctx, j)
	if j.Params == 0 {
		v.SizeNote = "the Hub reports no safetensors parameter count"
		v.GPUNote = "size unknown: assumed the largest"
	} else if _, note := sizing.WorldSize(j.Params); note != "" {
		v.GPUNote = note
	}
	return statuscomment.Render(v)
}

// queuePosition is the job's place among cycles waiting for the same GPU
// count (0 when not queued or unknown).
func (w *Worker) queuePosition(ctx context.Context, j *bus.Job) int {
	if j.Status != bus.StatusQueued || w.d.Bus.Cycles == nil {
		return 0
	}
	cons, err := w.d.Bus.Cycles.Consumer(ctx, bus.ConsumerName(j.GPUs))
	if err != nil {
		return 0
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return 0
	}
	return int(info.NumPending)
}

// ensureStatusComment gives j its one status comment: the one recorded, else
// one of the bot's on the issue that carries the job's marker (a comment posted
// by an attempt that died before recording it), else a new one.
func (w *Worker) ensureStatusComment(ctx context.Context, gh *github.Client, j *bus.Job) error {
	if j.StatusCommentID != 0 {
		return nil
	}
	id, err := w.findStatusComment(ctx, gh, j)
	if err != nil {
		return err
	}
	if id == 0 {
		body := w.view(ctx, j)
		id, err = w.comment(ctx, gh, j.Owner, j.Repo, j.Issue, body)
		if err != nil {
			return err
		}
	}
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
func (w *Worker) refreshStatus(ctx context.Context, gh *github.Client, j *bus.Job) error {
	if j.StatusCommentID == 0 {
		return nil
	}
	body := w.view(ctx, j)
	_, resp, err := gh.Issues.EditComment(ctx, j.Owner, j.Repo, j.StatusCommentID, &github.IssueComment{Body: &body})
	if resp != nil && resp.StatusCode == 404 {
		// Someone deleted it: post a new one.
		zerolog.Ctx(ctx).Info().Str(LogKeyJob, j.Key).Msg("Status comment gone; posting a new one")
		j.StatusCommentID = 0
		if _, err := bus.UpdateJob(ctx, w.d.Bus.Jobs, j.Key, func(cur *bus.Job) error {
			cur.StatusCommentID = 0
			return nil
		}); err != nil {
			return err
		}
		return w.ensureStatusComment(ctx, gh, j)
	}
	if err != nil {
		return fmt.Errorf("edit status comment of %s: %w", j.Key, err)
	}
	return nil
}
