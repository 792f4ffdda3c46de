package jobs

import (
	"context"
	"errors"

	"github.com/rs/zerolog"

	"github.com/nvidia/adbot/bus"
)

// feedback hands review remarks to the job. While a cycle is queued or
// running they wait in its pending list; on an idle job they wait
// FeedbackSettle for the rest of a burst (a review's line comments) and then
// go out as one cycle.
func (w *Worker) feedback(ctx context.Context, st *state) error {
	c := st.c
	j, err := w.liveJob(ctx, st)
	if j == nil {
		return err
	}
	busy := j.Status == bus.StatusQueued || j.Status == bus.StatusRunning || j.Status == bus.StatusAwaitingApproval
	if w.d.FeedbackSettle > 0 && !busy && !st.rec.Settling {
		// First pass: park the remarks, come back when the burst has settled.
		_, err := bus.UpdateJob(ctx, w.d.Bus.Jobs, j.Key, func(cur *bus.Job) error {
			added := false
			for _, f := range c.Feedback {
				if !hasFeedback(cur.PendingFeedback, f) {
					cur.PendingFeedback = append(cur.PendingFeedback, f)
					added = true
				}
			}
			if !added {
				return bus.ErrUnchanged
			}
			return nil
		})
		if err != nil {
			if errors.Is(err, bus.ErrJobEnded) {
				return nil
			}
			return err
		}
		return errSettle
	}
	fb := c.Feedback
	if st.rec.Settling {
		// Second pass: the remarks were parked in the first and may already
		// have gone out with another remark's cycle; only flush what waits.
		fb = nil
	}
	j2, published, err := bus.QueueFeedback(ctx, w.d.Bus, j.Key, fb, c.DeliveryID)
	if errors.Is(err, bus.ErrJobEnded) {
		return nil
	}
	if err != nil {
		return err
	}
	zerolog.Ctx(ctx).Info().Str(bus.LogKeyJob, j.Key).Bool("published", published).Int("pending", len(j2.PendingFeedback)).
		Msg("Feedback queued")
	return w.refreshStatus(ctx, st.gh, j2)
}

func hasFeedback(list []bus.Feedback, f bus.Feedback) bool {
	for _, g := range list {
		if g.Source == f.Source && g.ID == f.ID {
			return true
		}
	}
	return false
}

// liveJob finds the job a fact about an issue or pull request (feedback, an
// end) is for. Without a job, or with one that has ended, there is nobody to
// tell: it returns nil and no error.
func (w *Worker) liveJob(ctx context.Context, st *state) (*bus.Job, error) {
	c := st.c
	j, err := bus.Find(ctx, w.d.Bus.Jobs, c.Owner, c.Repo, c.Issue, c.IsPR)
	if errors.Is(err, bus.ErrNoJob) {
		zerolog.Ctx(ctx).Debug().Msgf("%s for no job", c.Kind)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if j.Status.Terminal() {
		zerolog.Ctx(ctx).Debug().Str(bus.LogKeyJob, j.Key).Msgf("%s for an ended job", c.Kind)
		return nil, nil
	}
	return j, nil
}
