package runners

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/onboarding/workflow"
	"github.com/nvidia/adbot/runners/proc"
)

// held is a cycle this runner holds the lease of, from the lease to the
// ack: each way it can end (given back, stopped because its job ended,
// finished) is one method.
type held struct {
	r     *Runner
	cy    *Cycle
	msg   jetstream.Msg
	lease *lease
	// ctx ends only when the runner is forced to stop; wctx also when the
	// lease is lost or the job ends.
	ctx, wctx context.Context
	log       *zerolog.Logger
	released  bool
}

func (h *held) key() string { return h.cy.Msg.JobKey }

// releaseLease frees the lease once.
func (h *held) releaseLease() {
	if !h.released {
		h.released = true
		h.lease.release(context.WithoutCancel(h.ctx))
	}
}

// markRunning records that this runner works on the cycle now; false when
// there is nothing to do (the message was acknowledged or given back).
func (h *held) markRunning() bool {
	cy, c := h.cy, h.cy.Msg
	var why string
	jp, err := bus.UpdateJob(h.wctx, h.r.res.Jobs, c.JobKey, func(j *bus.Job) error {
		if why = stale(j, c.Number); why != "" {
			return bus.ErrUnchanged
		}
		resumed := j.Status == bus.StatusRunning && j.Runner != ""
		j.Status = bus.StatusRunning
		j.Runner, j.RunnerGPUs = cy.Runner, cy.GPUs
		if j.Branch == "" {
			j.Branch = BranchName(j)
		}
		if j.Outbox != nil && j.Outbox.Number == c.Number {
			j.Outbox = nil // we hold it: it was published
		}
		if !resumed {
			j.Started = cy.Started
			j.Completed = time.Time{}
		}
		if c.Kind != bus.KindRetry || j.CycleKind == "" {
			j.CycleKind = c.Kind
		}
		j.Note = ""
		return nil
	})
	if err != nil {
		h.log.Error().Err(err).Msg("mark job running: cycle given back")
		_ = h.msg.NakWithDelay(5 * time.Second)
		return false
	}
	if why != "" {
		h.log.Info().Str("why", why).Msg("nothing to do: cycle acknowledged")
		_ = h.msg.Ack()
		return false
	}
	cy.job = *jp
	return true
}

// giveBack returns the cycle to the queue: the job says queued again (with
// why), the lease is freed, and the message comes back after delay (at once
// when the runner is forced to stop).
func (h *held) giveBack(why string, delay time.Duration) {
	cy := h.cy
	_, _ = bus.UpdateJob(context.WithoutCancel(h.ctx), h.r.res.Jobs, h.key(), func(j *bus.Job) error {
		if j.Runner != cy.Runner || j.Cycle != cy.Msg.Number || j.Status != bus.StatusRunning {
			return bus.ErrUnchanged
		}
		j.Status, j.Runner, j.RunnerGPUs, j.Running = bus.StatusQueued, "", nil, ""
		j.Note = cy.redactString(why)
		return nil
	})
	h.releaseLease()
	if h.r.forceCtx.Err() != nil || delay <= 0 {
		_ = h.msg.Nak()
	} else {
		_ = h.msg.NakWithDelay(delay)
	}
}

// fail ends the cycle failed with note, before its workflow ran.
func (h *held) fail(note string) {
	if _, err := bus.EndCycle(context.WithoutCancel(h.ctx), h.r.res, h.key(), h.cy.Msg.Number, bus.StatusFailed, clipNote(note)); err != nil {
		h.log.Warn().Err(err).Msg("record the failed cycle")
	}
	h.releaseLease()
	_ = h.msg.Ack()
}

// jobEnded says whether the job was cancelled or ended under the cycle.
func (h *held) jobEnded(err error) bool {
	return errors.Is(context.Cause(h.wctx), bus.ErrJobEnded) || errors.Is(err, bus.ErrJobEnded)
}

// stopEnded finishes a cycle whose job was cancelled or ended under it.
func (h *held) stopEnded(err error) {
	h.log.Info().Err(err).Msg("job ended (cancelled or done) while the cycle ran: stopped")
	if _, ferr := bus.EndCycle(context.WithoutCancel(h.ctx), h.r.res, h.key(), h.cy.Msg.Number, bus.StatusFailed, "stopped: the job ended"); ferr != nil {
		h.log.Warn().Err(ferr).Msg("record end of stopped cycle")
	}
	h.releaseLease()
	_ = h.msg.Ack()
}

// forced gives the cycle back when the runner was forced to stop, and says
// so: a forced stop kills the fetch or the checkout under way, which is the
// stop, not a failure of either.
func (h *held) forced() bool {
	if h.r.forceCtx.Err() == nil {
		return false
	}
	h.log.Warn().Msg("forced stop: cycle given back for another runner")
	h.giveBack("runner "+h.cy.Runner+" was stopped; given back for another runner", 0)
	return true
}

// prepare makes what the workflow works in: the fetched mirror, the job's
// worktree, the scratch dir, the sandbox, the process runner and the
// reporter. When it returns false the cycle has been ended or given back.
// cleanup undoes what was made, in any case.
func (h *held) prepare() (cleanup func(), ok bool) {
	r, cy, log := h.r, h.cy, h.log
	var undo []func()
	cleanup = func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	if err := r.mirror.Fetch(h.wctx); err != nil {
		switch {
		case h.jobEnded(err):
			h.stopEnded(err)
		case h.forced():
		default:
			log.Error().Err(err).Msg("fetch mirror: cycle given back")
			h.giveBack("runner "+cy.Runner+" could not fetch its mirror; given back", 30*time.Second)
		}
		return cleanup, false
	}
	wt, err := r.mirror.Add(h.wctx, cy.Job().Branch)
	if err != nil {
		switch {
		case h.jobEnded(err):
			h.stopEnded(err)
		case h.forced():
		default:
			log.Error().Err(err).Msg("make worktree: cycle given back")
			h.giveBack("runner "+cy.Runner+" could not make a worktree; given back", time.Minute)
		}
		return cleanup, false
	}
	undo = append(undo, func() {
		if err := wt.Release(context.WithoutCancel(h.ctx)); err != nil {
			log.Warn().Err(err).Msg("clean worktree")
		}
	})
	cy.Worktree = wt
	if def, err := r.mirror.DefaultBranch(h.wctx); err == nil {
		cy.upstream = "refs/remotes/origin/" + def
	}
	if devs, err := r.host.Inventory(h.wctx); err == nil {
		for _, d := range devs {
			if slices.Contains(cy.GPUs, d.Index) {
				cy.devices = append(cy.devices, d)
			}
		}
	}
	cy.scratch = filepath.Join(r.cfg.DataDir, "scratch", fmt.Sprintf("%s-%d", h.key(), cy.Msg.Number))
	if err := os.MkdirAll(cy.scratch, 0o700); err != nil {
		log.Error().Err(err).Msg("make scratch dir: cycle given back")
		h.giveBack("runner "+cy.Runner+" could not make a scratch directory; given back", time.Minute)
		return cleanup, false
	}
	undo = append(undo, func() { _ = os.RemoveAll(cy.scratch) })
	// The live output stream outlives the proxy (whose refusals it shows)
	// and every process: it is closed, and flushed, last.
	logs := r.newLogStream(h.ctx, h.key(), cy.Msg.Number)
	undo = append(undo, logs.close)
	if err := r.confine(h.wctx, cy, logs.send); err != nil {
		log.Error().Err(err).Msg("cycle cannot be confined: failed")
		h.fail(err.Error())
		return cleanup, false
	}
	if cy.proxy != nil {
		undo = append(undo, func() { _ = cy.proxy.Close() })
	}
	cy.redact = proc.NewRedactor(append(r.passedSecrets(), h.lease.proof)...)
	cy.tokens = &tokenSource{nc: r.nc, job: h.key(), runner: cy.Runner, proof: h.lease.proof, redact: cy.redact}
	cy.exec = &proc.Runner{LogDir: r.logDir(cy.Msg), Redactor: cy.redact, PassEnv: r.cfg.PassEnv, Sink: logs.send, Sandbox: r.cfg.Sandbox}
	cy.Reporter = newReporter(cy, r.deps.HTTP, r.cfg.GitHubAPIURL, r.pacer())
	return cleanup, true
}

// settle records how the workflow ended: given back, stopped, or finished
// with a status (waiting for review, awaiting a maintainer, failed). It
// returns true when the cycle finished and its message is to be acked.
func (h *held) settle(err error) bool {
	r, cy, log := h.r, h.cy, h.log
	switch cause := context.Cause(h.wctx); {
	case h.forced():
		log.Warn().Err(err).Msg("the cycle was stopped")
		return false
	case h.jobEnded(err):
		h.stopEnded(err)
		return false
	case errors.Is(cause, ErrLeaseLost) || errors.Is(err, ErrLeaseLost):
		log.Error().Err(err).Msg("lease lost: another runner has the job; stopping")
		h.released = true // not ours to delete
		return false
	case IsTransient(err) || workflow.IsTransient(err):
		log.Warn().Err(err).Msg("transient failure: cycle given back to try again")
		h.giveBack("retrying after: "+err.Error(), 30*time.Second)
		return false
	case busUnavailable(err):
		log.Warn().Err(err).Msg("NATS did not answer: cycle given back to resume from its last recorded phase")
		h.giveBack("retrying after NATS did not answer: "+err.Error(), 5*time.Second)
		return false
	}
	status, note := bus.StatusWaitingReview, "cycle complete"
	wait := workflow.AsWait(err)
	switch {
	case wait != nil:
		status, note = bus.StatusAwaitingApproval, clipNote(cy.redact.String(wait.Reason))
		log.Info().Str("waits_for", wait.For).Msg("cycle paused for a maintainer")
	case err != nil:
		status, note = bus.StatusFailed, clipNote(cy.redact.String(err.Error()))
		log.Error().Err(err).Msg("cycle failed")
	}
	// The cycle's running time counts against the job's budget; a pause
	// says what it waits for.
	if _, err := cy.UpdateJob(h.wctx, func(j *bus.Job) error {
		j.BudgetWall += time.Since(cy.Started)
		if wait != nil {
			j.WaitFor = wait.For
		}
		return nil
	}); err != nil {
		log.Warn().Err(err).Msg("record the cycle's time")
	}
	// The result is ours to record only while the lease is.
	if err := h.lease.renew(h.wctx); err != nil {
		log.Error().Err(err).Msg("lease lost before the end: stopping without recording")
		h.released = true
		return false
	}
	r.uploadLogs(h.wctx, cy.Msg)
	final, err := bus.EndCycle(h.wctx, r.res, h.key(), cy.Msg.Number, status, note)
	if err != nil {
		log.Error().Err(err).Msg("record end of cycle: given back")
		h.releaseLease()
		_ = h.msg.NakWithDelay(5 * time.Second)
		return false
	}
	cy.mu.Lock()
	cy.job = *final
	cy.mu.Unlock()
	return true
}
