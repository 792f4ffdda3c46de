package jobs

import (
	"context"
	"errors"
	"strings"

	"github.com/rs/zerolog"

	"github.com/nvidia/adbot/bus"
)

// findJob finds the command's job, replying when there is none.
func (w *Worker) findJob(ctx context.Context, st *state) (*bus.Job, error) {
	c := st.c
	j, err := bus.Find(ctx, w.d.Bus.Jobs, c.Owner, c.Repo, c.Issue, c.IsPR)
	if errors.Is(err, bus.ErrNoJob) {
		return nil, st.reply(ctx, "no-job", noJobText(c.Actor))
	}
	return j, err
}

// A move is what a command that steers a found job does to it.
type move struct {
	// what names the refusal reply within the delivery.
	what string
	// applies says whether the job is in a state the command is for; it is
	// asked again inside the compare-and-swap.
	applies func(*bus.Job) bool
	// refuse says why the command does not apply.
	refuse func(user string, j *bus.Job) string
	// cycle, when set, is the kind of cycle the command queues.
	cycle bus.CycleKind
	// change is the change, made inside the compare-and-swap.
	change func(*bus.Job)
}

// steer finds the command's job and makes m's change to it, or replies why
// not; then the status comment shows the job as it now is.
func (w *Worker) steer(ctx context.Context, st *state, m move) error {
	j, err := w.findJob(ctx, st)
	if j == nil {
		return err
	}
	if !m.applies(j) {
		return st.reply(ctx, m.what, m.refuse(st.c.Actor, j))
	}
	mutate := func(cur *bus.Job) error {
		if !m.applies(cur) {
			return bus.ErrUnchanged
		}
		m.change(cur)
		return nil
	}
	if m.cycle != "" {
		j, err = bus.Enqueue(ctx, w.d.Bus, j.Key, m.cycle, nil, st.c.DeliveryID, mutate)
	} else {
		j, err = bus.UpdateJob(ctx, w.d.Bus.Jobs, j.Key, mutate)
	}
	if errors.Is(err, bus.ErrJobEnded) {
		return nil
	}
	if err != nil {
		return err
	}
	return w.refreshStatus(ctx, st.gh, j)
}

// proceed starts a job that waits for a maintainer: before its first cycle
// (remote code), or paused by a runner in any phase (a model that does not
// fit, a spent budget). A paused job goes on from where it stopped.
func (w *Worker) proceed(ctx context.Context, st *state) error {
	j, err := w.findJob(ctx, st)
	if j == nil {
		return err
	}
	m := move{
		what:    "proceed",
		applies: func(j *bus.Job) bool { return j.Status == bus.StatusAwaitingApproval },
		refuse:  nothingAwaitsText,
		cycle:   bus.KindOnboard,
		change:  func(j *bus.Job) { j.Note = "approved to run remote code by @" + st.c.Actor },
	}
	if j.WaitFor != "" {
		m.cycle = bus.KindRetry
		m.change = func(j *bus.Job) {
			j.Note = "@" + st.c.Actor + " said proceed past: " + j.WaitFor
			j.Proceeded = append(j.Proceeded, j.WaitFor)
			j.WaitFor = ""
		}
	}
	return w.steer(ctx, st, m)
}

// cancel ends a job; runners watching it stop.
func (w *Worker) cancel(ctx context.Context, st *state) error {
	return w.steer(ctx, st, move{
		what:    "cancel",
		applies: func(j *bus.Job) bool { return !j.Status.Terminal() },
		refuse:  alreadyEndedText,
		change:  func(j *bus.Job) { w.endJob(j, bus.StatusCancelled, "cancelled by @"+st.c.Actor) },
	})
}

// retry runs a failed job's last cycle again.
func (w *Worker) retry(ctx context.Context, st *state) error {
	return w.steer(ctx, st, move{
		what:    "retry",
		applies: func(j *bus.Job) bool { return j.Status == bus.StatusFailed },
		refuse:  cannotRetryText,
		cycle:   bus.KindRetry,
		change:  func(j *bus.Job) { j.Note = "retried by @" + st.c.Actor },
	})
}

// endJob marks j ended with status and note; what waited for a cycle is dropped.
func (w *Worker) endJob(j *bus.Job, status bus.JobStatus, note string) {
	j.Status, j.Note = status, note
	j.PendingFeedback, j.Outbox = nil, nil
	j.Completed = w.d.Now().UTC()
}

// status answers with where the job stands and refreshes its status comment.
func (w *Worker) status(ctx context.Context, st *state) error {
	j, err := w.findJob(ctx, st)
	if j == nil {
		return err
	}
	if err := w.refreshStatus(ctx, st.gh, j); err != nil {
		return err
	}
	return st.reply(ctx, "status", statusText(st.c.Actor, j, w.queueOf(ctx, j)))
}

// end finishes a job: an approval of the head last tested, a closing phrase,
// or its pull request closed.
func (w *Worker) end(ctx context.Context, st *state) error {
	c := st.c
	j, err := w.liveJob(ctx, st)
	if j == nil {
		return err
	}
	var note string
	switch c.Reason {
	case "approved":
		if j.HeadSHA == "" || !strings.EqualFold(c.CommitSHA, j.HeadSHA) {
			zerolog.Ctx(ctx).Info().Str(bus.LogKeyJob, j.Key).Str("approved", c.CommitSHA).Str("tested", j.HeadSHA).
				Msg("Approval of an untested head")
			return st.reply(ctx, "untested", untestedApprovalText(c.Actor, c.CommitSHA, j.HeadSHA))
		}
		note = "approved by @" + c.Actor
	case "merged":
		note = "pull request merged"
	case "closed":
		note = "pull request closed without merging"
	default:
		note = "ended by @" + c.Actor
	}
	ended := false
	j, err = bus.UpdateJob(ctx, w.d.Bus.Jobs, j.Key, func(cur *bus.Job) error {
		if cur.Status.Terminal() {
			return bus.ErrUnchanged
		}
		w.endJob(cur, bus.StatusDone, note)
		ended = true
		return nil
	})
	if err != nil {
		return err
	}
	zerolog.Ctx(ctx).Info().Str(bus.LogKeyJob, j.Key).Str("reason", c.Reason).Msg("Job ended")
	if err := w.refreshStatus(ctx, st.gh, j); err != nil {
		return err
	}
	if !ended {
		return nil // another command ended it first, and said so
	}
	return st.reply(ctx, "ended", endedText(j))
}
