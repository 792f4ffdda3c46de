package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrJobEnded is returned when work is asked of a cancelled or finished job.
var ErrJobEnded = errors.New("job has ended")

// PublishCycle puts c on the subject for its GPU count, de-duplicated by c.MsgID().
func PublishCycle(ctx context.Context, js jetstream.JetStream, c Cycle) error {
	if FitGPUs(c.GPUs) != c.GPUs {
		return fmt.Errorf("publish cycle %s: %d GPUs is not one of %v", c.MsgID(), c.GPUs, GPUSizes)
	}
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode cycle %s: %w", c.MsgID(), err)
	}
	for attempt := 1; ; attempt++ {
		_, err := js.Publish(ctx, CycleSubject(c.GPUs), b, jetstream.WithMsgID(c.MsgID()))
		var apiErr *jetstream.APIError
		if err == nil {
			return nil
		}
		if !errors.As(err, &apiErr) || apiErr.ErrorCode != errCodeMsgIDInProcess || attempt >= maxInProcessRetries {
			return fmt.Errorf("publish cycle %s: %w", c.MsgID(), err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("publish cycle %s: %w", c.MsgID(), ctx.Err())
		case <-time.After(time.Duration(attempt) * 20 * time.Millisecond):
		}
	}
}

// errCodeMsgIDInProcess is JetStream's answer (409) on a clustered stream to a
// publish whose Nats-Msg-Id another publish, not yet stored, carries: two
// publishers of one cycle raced (the server's command worker and its outbox
// relay). Asked again once the first is stored, JetStream acknowledges the
// copy as a duplicate; it is stored once either way.
const errCodeMsgIDInProcess jetstream.ErrorCode = 10158

// maxInProcessRetries bounds the publishes of one cycle that meet errCodeMsgIDInProcess.
const maxInProcessRetries = 20

// NextCycle describes the job's next cycle (number j.Cycle+1) without changing j.
func NextCycle(j *Job, kind CycleKind, feedback []Feedback, deliveryID string) Cycle {
	return Cycle{
		JobKey:         j.Key,
		Number:         j.Cycle + 1,
		Kind:           kind,
		Owner:          j.Owner,
		Repo:           j.Repo,
		Issue:          j.Issue,
		InstallationID: j.InstallationID,
		ModelID:        j.ModelID,
		Revision:       j.Revision,
		GPUs:           j.GPUs,
		Feedback:       feedback,
		DeliveryID:     deliveryID,
		Enqueued:       time.Now().UTC(),
	}
}

// stage records c as the job's newest cycle, in its outbox, and marks the job queued.
func stage(j *Job, c Cycle) {
	j.Cycle = c.Number
	j.Outbox = &c
	j.Status = StatusQueued
	j.Phase = ""
	j.Runner, j.RunnerGPUs, j.Running = "", nil, ""
}

// Enqueue records and publishes the job's next cycle of the given kind. check,
// when non-nil, runs inside the compare-and-swap and may refuse (its error is
// returned) or return ErrUnchanged to enqueue nothing. A terminal job refuses
// with ErrJobEnded.
func Enqueue(ctx context.Context, r *Resources, key string, kind CycleKind, feedback []Feedback, deliveryID string, check func(*Job) error) (*Job, error) {
	return enqueue(ctx, r, key, nil, 0, kind, feedback, deliveryID, check)
}

// EnqueueAt is Enqueue for job j as stored at revision rev (as CreateJob or
// GetJob answered): it starts from a copy of j instead of reading the job
// again, and reads it only when somebody wrote it since. j is not changed.
func EnqueueAt(ctx context.Context, r *Resources, j *Job, rev uint64, kind CycleKind, feedback []Feedback, deliveryID string, check func(*Job) error) (*Job, error) {
	return enqueue(ctx, r, j.Key, j.clone(), rev, kind, feedback, deliveryID, check)
}

func enqueue(ctx context.Context, r *Resources, key string, known *Job, rev uint64, kind CycleKind, feedback []Feedback, deliveryID string, check func(*Job) error) (*Job, error) {
	j, rev, err := updateJob(ctx, r.Jobs, key, known, rev, func(j *Job) error {
		if j.Status.Terminal() {
			return fmt.Errorf("enqueue %s cycle for %s: %w", kind, key, ErrJobEnded)
		}
		if check != nil {
			if err := check(j); err != nil {
				return err
			}
		}
		stage(j, NextCycle(j, kind, feedback, deliveryID))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return flushOutbox(ctx, r, j, rev)
}

// FlushOutbox publishes the cycle in j's outbox, if any, then clears it. It is
// safe to call any number of times, from anywhere.
func FlushOutbox(ctx context.Context, r *Resources, j *Job) (*Job, error) {
	return flushOutbox(ctx, r, j, 0)
}

// flushOutbox is FlushOutbox for j as stored at revision rev (0: unknown),
// which saves reading the job again to clear the outbox.
func flushOutbox(ctx context.Context, r *Resources, j *Job, rev uint64) (*Job, error) {
	if j.Outbox == nil {
		return j, nil
	}
	c := *j.Outbox
	if err := PublishCycle(ctx, r.JS, c); err != nil {
		return j, err
	}
	var known *Job
	if rev != 0 {
		known = j.clone()
	}
	j, _, err := updateJob(ctx, r.Jobs, j.Key, known, rev, func(j *Job) error {
		if j.Outbox == nil || j.Outbox.Number != c.Number {
			return ErrUnchanged
		}
		j.Outbox = nil
		return nil
	})
	return j, err
}

// QueueFeedback hands review feedback to a job. While a cycle is queued or
// running (or the job awaits approval), the feedback waits in the job's pending
// list and goes out with the next cycle; otherwise it is published at once as a
// feedback cycle. Feedback already pending or already sent (same Source and ID)
// is not added twice. It reports whether a cycle was published.
func QueueFeedback(ctx context.Context, r *Resources, key string, fb []Feedback, deliveryID string) (*Job, bool, error) {
	published := false
	j, rev, err := updateJob(ctx, r.Jobs, key, nil, 0, func(j *Job) error {
		published = false
		if j.Status.Terminal() {
			return fmt.Errorf("queue feedback for %s: %w", key, ErrJobEnded)
		}
		added := false
		for _, f := range fb {
			if !hasFeedback(j.PendingFeedback, f) && (j.Outbox == nil || !hasFeedback(j.Outbox.Feedback, f)) {
				j.PendingFeedback = append(j.PendingFeedback, f)
				added = true
			}
		}
		switch j.Status {
		case StatusQueued, StatusRunning, StatusAwaitingApproval:
			if !added {
				return ErrUnchanged
			}
			return nil
		}
		if len(j.PendingFeedback) == 0 {
			return ErrUnchanged
		}
		stage(j, NextCycle(j, KindFeedback, j.PendingFeedback, deliveryID))
		j.PendingFeedback = nil
		published = true
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	j, err = flushOutbox(ctx, r, j, rev)
	return j, published, err
}

func hasFeedback(list []Feedback, f Feedback) bool {
	for _, g := range list {
		if g.Source == f.Source && g.ID == f.ID {
			return true
		}
	}
	return false
}

// FinishCycle records the end of cycle n with status (StatusWaitingReview or
// StatusFailed) and note. If feedback waited meanwhile, it is published as the
// next cycle and the job is left queued. A job cancelled or ended meanwhile
// keeps its terminal status. Finishing a cycle that is not the job's newest, or
// finishing it twice, changes nothing.
func FinishCycle(ctx context.Context, r *Resources, key string, n int, status JobStatus, note string) (*Job, error) {
	j, rev, err := endCycle(ctx, r, key, n, status, note)
	if err != nil {
		return nil, err
	}
	return flushOutbox(ctx, r, j, rev)
}

// EndCycle is FinishCycle without publishing the next cycle it may stage in
// the job's outbox: runners call it, whose NATS user may not publish cycles;
// the server's outbox relay publishes what they stage.
func EndCycle(ctx context.Context, r *Resources, key string, n int, status JobStatus, note string) (*Job, error) {
	j, _, err := endCycle(ctx, r, key, n, status, note)
	return j, err
}

func endCycle(ctx context.Context, r *Resources, key string, n int, status JobStatus, note string) (*Job, uint64, error) {
	return updateJob(ctx, r.Jobs, key, nil, 0, func(j *Job) error {
		if j.Cycle != n {
			return ErrUnchanged
		}
		if j.Status.Terminal() {
			if j.Runner == "" {
				return ErrUnchanged
			}
			j.Runner, j.RunnerGPUs, j.Running = "", nil, ""
			return nil
		}
		if j.Status != StatusRunning && j.Status != StatusQueued {
			return ErrUnchanged
		}
		if j.Outbox != nil && j.Outbox.Number == n {
			j.Outbox = nil // the runner had it: it was published
		}
		j.Completed = time.Now().UTC()
		j.Runner, j.RunnerGPUs, j.Running = "", nil, ""
		j.Status, j.Note = status, note
		if k := len(j.PendingFeedback); k > 0 {
			stage(j, NextCycle(j, KindFeedback, j.PendingFeedback, ""))
			j.PendingFeedback = nil
			// Say what the queued cycle is for, not only how the last one ended.
			j.Note = fmt.Sprintf("answering %d remark%s made while cycle %d ran (it ended: %s)", k, plural(k), n, note)
		}
		return nil
	})
}
