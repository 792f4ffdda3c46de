package runners

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/nvidia/adbot/bus"
)

// start launches a cycle the runner has just pulled, on GPUs from avail.
func (r *Runner) start(ctx, base context.Context, msg jetstream.Msg, size int, avail []int, ackWait time.Duration) {
	log := zerolog.Ctx(ctx)
	var c bus.Cycle
	if err := json.Unmarshal(msg.Data(), &c); err != nil || c.JobKey == "" || c.Number <= 0 {
		log.Error().Err(err).Str("subject", msg.Subject()).Msg("cycle message does not decode: terminated")
		_ = msg.Term()
		return
	}
	r.mu.Lock()
	_, dup := r.running[c.JobKey]
	r.mu.Unlock()
	if dup {
		log.Warn().Str(LogKeyJob, c.JobKey).Msg("job already running here: cycle given back")
		_ = msg.NakWithDelay(r.leaseTTL)
		return
	}
	gpus, ok := r.ledger.Reserve(c.JobKey, avail, size)
	if !ok {
		_ = msg.Nak()
		return
	}
	cy := &Cycle{Msg: c, Runner: r.cfg.Name, GPUs: gpus, Started: time.Now().UTC(), Remote: r.cfg.Remote, res: r.res}
	r.mu.Lock()
	r.running[c.JobKey] = cy
	r.mu.Unlock()
	r.publishPresence(ctx)
	r.cycles.Add(1)
	go func() {
		defer r.cycles.Done()
		defer func() {
			r.ledger.Release(c.JobKey)
			r.mu.Lock()
			delete(r.running, c.JobKey)
			r.mu.Unlock()
			r.kick()
		}()
		cctx := zerolog.Ctx(ctx).With().Str(LogKeyJob, c.JobKey).Int(LogKeyCycle, c.Number).Ints(LogKeyGPU, gpus).Logger().WithContext(base)
		r.runCycle(cctx, cy, msg, ackWait)
	}()
}

// runCycle carries one cycle from lease to ack. ctx ends only when the
// runner is forced to stop.
func (r *Runner) runCycle(ctx context.Context, cy *Cycle, msg jetstream.Msg, ackWait time.Duration) {
	log := zerolog.Ctx(ctx)
	c := cy.Msg
	j, _, err := bus.GetJob(ctx, r.res.Jobs, c.JobKey)
	if errors.Is(err, bus.ErrNoJob) {
		log.Error().Msg("cycle for a job that does not exist: terminated")
		_ = msg.Term()
		return
	} else if err != nil {
		log.Error().Err(err).Msg("read job: cycle given back")
		_ = msg.NakWithDelay(5 * time.Second)
		return
	}
	if why := stale(j, c.Number); why != "" {
		log.Info().Str("why", why).Msg("nothing to do: cycle acknowledged")
		_ = msg.Ack()
		return
	}
	l, err := r.acquireLease(ctx, c.JobKey, c.Number, cy.GPUs)
	if err != nil {
		log.Info().Err(err).Msg("cycle given back")
		_ = msg.NakWithDelay(r.leaseTTL / 2)
		return
	}
	h := &held{r: r, cy: cy, msg: msg, lease: l, ctx: ctx, log: log}
	defer h.releaseLease()

	wctx, cancel := context.WithCancelCause(ctx)
	h.wctx = wctx
	defer cancel(nil)
	var keep sync.WaitGroup
	keep.Go(func() { r.keepAlive(wctx, cancel, msg, l, ackWait) })
	keep.Go(func() { r.watchJob(wctx, cancel, c.JobKey) })
	defer keep.Wait()
	defer cancel(nil)

	if !h.markRunning() {
		return
	}
	cleanup, ok := h.prepare()
	defer cleanup()
	if !ok {
		return
	}
	log.Info().Str("dir", cy.Worktree.Dir).Str("branch", cy.Worktree.Branch).Bool("resumed", cy.Worktree.Resumed).
		Str("phase", cy.Job().Phase).Msg("cycle started")
	err = runWorkflow(wctx, r.deps.Workflow, cy)
	if !h.settle(err) {
		return
	}
	// Free the job for its next cycle before the ack: a redelivery of this
	// one finds it finished and is acknowledged without work.
	cancel(nil)
	keep.Wait()
	h.releaseLease()
	if err := msg.DoubleAck(context.WithoutCancel(ctx)); err != nil {
		log.Warn().Err(err).Msg("ack cycle")
	}
	log.Info().Str("status", string(cy.Job().Status)).Dur("took", time.Since(cy.Started)).Msg("cycle finished")
}

// busUnavailable reports whether err says NATS or JetStream did not answer:
// a node lost, a stream electing a leader, the connection reconnecting (the
// server's token broker among the missing). Such a cycle is given back and
// resumed, not failed: the bus comes back within seconds.
func busUnavailable(err error) bool {
	for _, e := range []error{nats.ErrNoResponders, nats.ErrTimeout, nats.ErrConnectionReconnecting, nats.ErrDisconnected, jetstream.ErrNoStreamResponse} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// maxNote is the most bytes of a failure the job's note keeps.
const maxNote = 1000

// clipNote shortens a failure for the job's note, cutting between runes so
// the status comment shows no broken character.
func clipNote(s string) string {
	if len(s) <= maxNote {
		return s
	}
	i := maxNote
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

var secretName = regexp.MustCompile(`(?i)token|secret|password|passwd|credential|private|api_?key|access_?key|(^|_)key$|(^|_)pat$`)

// passedSecrets are the values of passed-through variables whose names say
// they are secret (HF_TOKEN, ...): redacted from everything that leaves the host.
func (r *Runner) passedSecrets() []string {
	var out []string
	for _, k := range r.cfg.PassEnv {
		if v := os.Getenv(k); v != "" && secretName.MatchString(k) {
			out = append(out, v)
		}
	}
	return out
}

// stale says why cycle n of j needs no work ("" when it does).
func stale(j *bus.Job, n int) string {
	switch {
	case j.Status.Terminal():
		return "job has ended (" + string(j.Status) + ")"
	case j.Cycle > n:
		return fmt.Sprintf("superseded by cycle %d", j.Cycle)
	case j.Cycle < n:
		return fmt.Sprintf("job record knows no cycle %d (newest %d)", n, j.Cycle)
	case j.Status != bus.StatusQueued && j.Status != bus.StatusRunning:
		return "cycle already finished (" + string(j.Status) + ")"
	}
	return ""
}
