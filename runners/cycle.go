package runners

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/runners/proc"
	"github.com/nvidia/adbot/runners/workspace"
)

// Log keys the runner adds to its zerolog context.
const (
	LogKeyRunner = "runner"
	LogKeyJob    = "job"
	LogKeyCycle  = "cycle"
	LogKeyGPU    = "gpu"
	LogKeyPhase  = "phase"
)

// LogSubjectPrefix is followed by the job key and carries a running cycle's
// output, redacted, as LogChunk messages in order (core NATS, for a live view).
const LogSubjectPrefix = "adbot.logs."

// LogChunk is one piece of a cycle's process output on LogSubjectPrefix+<job>.
type LogChunk struct {
	Cycle  int    `json:"cycle"`
	Step   string `json:"step"`
	Seq    int    `json:"seq"`
	Stream string `json:"stream"`
	Data   string `json:"data"`
}

// Workflow is what a cycle does. Run returns nil when the cycle's work is
// done (the job then waits for review), an error when it failed (the job is
// marked failed with the error as its note), or an error wrapped by Transient
// to give the cycle back for a later try. Run must stop promptly when ctx ends.
type Workflow interface {
	Run(ctx context.Context, c *Cycle) error
}

// WorkflowFunc adapts a function to Workflow.
type WorkflowFunc func(ctx context.Context, c *Cycle) error

// Run calls f.
func (f WorkflowFunc) Run(ctx context.Context, c *Cycle) error { return f(ctx, c) }

type transientError struct{ err error }

func (e transientError) Error() string { return e.err.Error() }
func (e transientError) Unwrap() error { return e.err }

// Transient marks err as passing (a network outage, a busy service): the
// runner gives the cycle back to the queue to be tried again later instead of
// failing the job.
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return transientError{err}
}

// IsTransient reports whether err was marked with Transient.
func IsTransient(err error) bool {
	var t transientError
	return errors.As(err, &t)
}

// ErrLeaseLost says another runner now holds the job: this one must stop.
var ErrLeaseLost = errors.New("lease on the job lost")

// errForced says the runner was told to stop its cycles now.
var errForced = errors.New("runner forced to stop")

// Cycle is one cycle being worked on, as its Workflow sees it.
type Cycle struct {
	// Msg is the cycle message.
	Msg bus.Cycle
	// Runner is this runner's name.
	Runner string
	// GPUs are the NVML indices given to the cycle; Exec sets
	// CUDA_VISIBLE_DEVICES to them.
	GPUs []int
	// Worktree is the job's checkout, on its branch.
	Worktree *workspace.Worktree
	// Reporter posts to GitHub, idempotently.
	Reporter *Reporter
	// Started is when this runner took the cycle.
	Started time.Time
	// AgentCmd is the configured coding agent program.
	AgentCmd string
	// Remote is the repository the branch is pushed to.
	Remote string

	res    *bus.Resources
	exec   *proc.Runner
	redact *proc.Redactor
	tokens *tokenSource

	mu    sync.Mutex
	job   bus.Job
	phase string
	// pushed is the last commit this cycle pushed to the branch.
	pushed string
}

// Job returns a copy of the job record as last read or written by this cycle.
func (c *Cycle) Job() bus.Job {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.job
}

// CurrentPhase is the phase running now ("" between phases).
func (c *Cycle) CurrentPhase() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.phase
}

// Redactor removes secrets (tokens fetched for the cycle among them) from text.
func (c *Cycle) Redactor() *proc.Redactor { return c.redact }

func (c *Cycle) redactString(s string) string {
	if c.redact == nil {
		return s
	}
	return c.redact.String(s)
}

// UpdateJob changes the job record by compare-and-swap, failing with
// ErrLeaseLost when another runner has taken the job over meanwhile.
func (c *Cycle) UpdateJob(ctx context.Context, mutate func(*bus.Job) error) (*bus.Job, error) {
	j, err := bus.UpdateJob(ctx, c.res.Jobs, c.Msg.JobKey, func(j *bus.Job) error {
		if j.Runner != c.Runner || j.Cycle != c.Msg.Number {
			return fmt.Errorf("job %s is now with runner %q, cycle %d: %w", j.Key, j.Runner, j.Cycle, ErrLeaseLost)
		}
		return mutate(j)
	})
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.job = *j
	c.mu.Unlock()
	return j, nil
}

// PhaseKey is the key in Job.Posted that records phase name of cycle n as complete.
func PhaseKey(n int, name string) string { return strconv.Itoa(n) + "/" + name + "/done" }

// PhaseDone reports whether the job record says phase name of this cycle is complete.
func (c *Cycle) PhaseDone(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.job.Posted[PhaseKey(c.Msg.Number, name)] != 0
}

// Phase runs fn as the phase called name, unless the job record says this
// cycle already completed it (a resumed cycle); then it returns nil at once.
// A job cancelled or ended meanwhile starts no phase: Phase returns an error
// wrapping bus.ErrJobEnded, and the runner stops the cycle.
// When fn succeeds, the commits it made are pushed to the job's branch (so
// that a runner taking the cycle over starts from them) and the phase's
// completion is recorded in the job before Phase returns, so the next phase
// never starts unrecorded.
func (c *Cycle) Phase(ctx context.Context, name string, fn func(ctx context.Context) error) error {
	log := zerolog.Ctx(ctx).With().Str(LogKeyPhase, name).Logger()
	if c.PhaseDone(name) {
		log.Info().Msg("phase already complete: skipped")
		return nil
	}
	// A job cancelled or ended while the last phase ran starts no new one.
	if j, _, err := bus.GetJob(ctx, c.res.Jobs, c.Msg.JobKey); err == nil && j.Status.Terminal() {
		return fmt.Errorf("phase %s: job %s is %s: %w", name, c.Msg.JobKey, j.Status, bus.ErrJobEnded)
	}
	c.mu.Lock()
	c.phase = name
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.phase = ""
		c.mu.Unlock()
	}()
	if err := c.Reporter.UpdateStatus(ctx); err != nil {
		log.Warn().Err(err).Msg("update status comment")
	}
	log.Info().Msg("phase started")
	if err := fn(log.WithContext(ctx)); err != nil {
		return fmt.Errorf("phase %s: %w", name, err)
	}
	if err := c.checkpoint(ctx); err != nil {
		return fmt.Errorf("phase %s: %w", name, err)
	}
	key := PhaseKey(c.Msg.Number, name)
	if _, err := c.UpdateJob(ctx, func(j *bus.Job) error {
		if j.Posted == nil {
			j.Posted = map[string]int64{}
		}
		j.Posted[key] = time.Now().Unix()
		j.Phase = name
		return nil
	}); err != nil {
		return fmt.Errorf("record phase %s: %w", name, err)
	}
	log.Info().Msg("phase complete")
	return nil
}

// Exec runs a process for the cycle: in the worktree unless cmd.Dir says
// otherwise, with the cycle's GPUs in CUDA_VISIBLE_DEVICES, output kept in the
// cycle's log directory and streamed live.
func (c *Cycle) Exec(ctx context.Context, cmd proc.Cmd) (proc.Result, error) {
	if cmd.Dir == "" && c.Worktree != nil {
		cmd.Dir = c.Worktree.Dir
	}
	cmd.Env = append(append([]string(nil), cmd.Env...), "CUDA_DEVICE_ORDER=PCI_BUS_ID", "CUDA_VISIBLE_DEVICES="+joinInts(c.GPUs))
	return c.exec.Run(ctx, cmd)
}

// Token returns an installation token for the job's repository with the given
// permissions (e.g. {"contents": "write"}), asked of the server, which checks
// that this runner holds the job's lease. It is kept in memory only and added
// to the cycle's redactor.
func (c *Cycle) Token(ctx context.Context, perms map[string]string) (string, error) {
	return c.tokens.token(ctx, perms)
}

// gitCredentialHelper answers git's credential requests from the environment,
// so the token is in no URL, argument or file, and only for the remote's
// host (ADBOT_GIT_HOST): a request for any other host gets no answer.
const gitCredentialHelper = `!f() { test "$1" = get || exit 0; h=; while IFS= read -r l && test -n "$l"; do case "$l" in host=*) h="${l#host=}";; esac; done; test -n "$h" && test "$h" = "$ADBOT_GIT_HOST" || exit 0; echo username=x-access-token; echo "password=$ADBOT_GIT_TOKEN"; }; f`

// Push pushes the worktree's HEAD to the job's branch on the remote and
// records the pushed commit as the job's HeadSHA: a workflow pushes what it
// has tested, and only approvals of that commit end the job. For an HTTPS
// remote it asks for a token with contents:write and hands it to git through
// a credential helper that reads it from git's environment.
func (c *Cycle) Push(ctx context.Context, force bool) (proc.Result, error) {
	res, head, err := c.push(ctx, force)
	if err != nil {
		return res, err
	}
	if _, err := c.UpdateJob(ctx, func(j *bus.Job) error {
		if j.HeadSHA == head {
			return bus.ErrUnchanged
		}
		j.HeadSHA = head
		return nil
	}); err != nil {
		return res, fmt.Errorf("push %s: record head %s: %w", c.Worktree.Branch, head, err)
	}
	return res, nil
}

// checkpoint pushes commits a phase made to the job's branch, without
// recording them as tested: the phase's record and its work then live
// together, and a runner that resumes the cycle elsewhere checks them out.
func (c *Cycle) checkpoint(ctx context.Context) error {
	if c.Worktree == nil {
		return nil
	}
	head, err := workspace.Git(ctx, c.Worktree.Dir, nil, "rev-parse", "--verify", "HEAD^{commit}")
	if err != nil {
		return fmt.Errorf("read head of %s: %w", c.Worktree.Branch, err)
	}
	c.mu.Lock()
	pushed := c.pushed
	c.mu.Unlock()
	if pushed == "" {
		pushed = c.Worktree.Base
	}
	if strings.TrimSpace(head) == pushed {
		return nil
	}
	_, _, err = c.push(ctx, false)
	return err
}

// push pushes HEAD to the job's branch and returns the commit pushed.
func (c *Cycle) push(ctx context.Context, force bool) (proc.Result, string, error) {
	args := []string{"git", "push", "--porcelain"}
	if force {
		args = append(args, "--force-with-lease")
	}
	args = append(args, "origin", "HEAD:refs/heads/"+c.Worktree.Branch)
	env := []string{"GIT_TERMINAL_PROMPT=0"}
	if strings.HasPrefix(c.Remote, "https://") || strings.HasPrefix(c.Remote, "http://") {
		if err := checkPushConfig(ctx, c.Worktree.Dir, c.Remote); err != nil {
			return proc.Result{}, "", fmt.Errorf("push %s: %w", c.Worktree.Branch, err)
		}
		tok, err := c.Token(ctx, map[string]string{"contents": "write"})
		if err != nil {
			return proc.Result{}, "", fmt.Errorf("push %s: %w", c.Worktree.Branch, err)
		}
		env = append(append(env, pushGitEnv...),
			"GIT_CONFIG_COUNT=3",
			"GIT_CONFIG_KEY_0=credential.helper", "GIT_CONFIG_VALUE_0=",
			"GIT_CONFIG_KEY_1=credential.helper", "GIT_CONFIG_VALUE_1="+gitCredentialHelper,
			"GIT_CONFIG_KEY_2=core.hooksPath", "GIT_CONFIG_VALUE_2=/dev/null",
			"ADBOT_GIT_TOKEN="+tok, "ADBOT_GIT_HOST="+remoteHost(c.Remote))
	}
	head, err := workspace.Git(ctx, c.Worktree.Dir, nil, "rev-parse", "--verify", "HEAD^{commit}")
	if err != nil {
		return proc.Result{}, "", fmt.Errorf("push %s: read head: %w", c.Worktree.Branch, err)
	}
	head = strings.TrimSpace(head)
	res, err := c.Exec(ctx, proc.Cmd{Name: "git-push", Args: args, Env: env, Timeout: 10 * time.Minute})
	if err != nil {
		return res, "", err
	}
	c.mu.Lock()
	c.pushed = head
	c.mu.Unlock()
	return res, head, nil
}

// remoteHost is the host (and port) of an http(s) remote URL, "" when it
// has none.
func remoteHost(remote string) string {
	u, err := url.Parse(remote)
	if err != nil {
		return ""
	}
	return u.Host
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

var branchUnsafe = regexp.MustCompile(`[^a-z0-9._-]+`)

// BranchName is the branch a job works on: adbot/<model>-<issue>.
func BranchName(j *bus.Job) string {
	m := strings.Trim(branchUnsafe.ReplaceAllString(strings.ToLower(strings.ReplaceAll(j.ModelID, "/", "-")), "-"), "-.")
	m = strings.ReplaceAll(m, "..", ".")
	if len(m) > 80 {
		m = m[:80]
	}
	if m == "" {
		m = "model"
	}
	return fmt.Sprintf("adbot/%s-%d", m, j.Issue)
}

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
	cy := &Cycle{Msg: c, Runner: r.cfg.Name, GPUs: gpus, Started: time.Now().UTC(), AgentCmd: r.cfg.AgentCmd, Remote: r.cfg.Remote, res: r.res}
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
	key := c.JobKey

	j, _, err := bus.GetJob(ctx, r.res.Jobs, key)
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

	lease, err := r.acquireLease(ctx, key, c.Number, cy.GPUs)
	if err != nil {
		log.Info().Err(err).Msg("cycle given back")
		_ = msg.NakWithDelay(r.leaseTTL / 2)
		return
	}
	released := false
	releaseLease := func() {
		if !released {
			released = true
			lease.release(context.WithoutCancel(ctx))
		}
	}
	defer releaseLease()

	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var keep sync.WaitGroup
	keep.Go(func() { r.keepAlive(wctx, cancel, msg, lease, ackWait) })
	keep.Go(func() { r.watchJob(wctx, cancel, key) })
	defer keep.Wait()
	defer cancel(nil)

	// Record that this runner works on the cycle now.
	var why string
	jp, err := bus.UpdateJob(wctx, r.res.Jobs, key, func(j *bus.Job) error {
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
		j.Note = ""
		return nil
	})
	if err != nil {
		log.Error().Err(err).Msg("mark job running: cycle given back")
		_ = msg.NakWithDelay(5 * time.Second)
		return
	}
	if why != "" {
		log.Info().Str("why", why).Msg("nothing to do: cycle acknowledged")
		_ = msg.Ack()
		return
	}
	cy.job = *jp

	// giveBack returns the cycle to the queue: the job says queued again (with
	// why), the lease is freed, and the message comes back after delay (at
	// once when the runner is forced to stop).
	giveBack := func(why string, delay time.Duration) {
		bctx := context.WithoutCancel(ctx)
		_, _ = bus.UpdateJob(bctx, r.res.Jobs, key, func(j *bus.Job) error {
			if j.Runner != cy.Runner || j.Cycle != c.Number || j.Status != bus.StatusRunning {
				return bus.ErrUnchanged
			}
			j.Status, j.Runner, j.RunnerGPUs = bus.StatusQueued, "", nil
			j.Note = cy.redactString(why)
			return nil
		})
		releaseLease()
		if r.forceCtx.Err() != nil || delay <= 0 {
			_ = msg.Nak()
		} else {
			_ = msg.NakWithDelay(delay)
		}
	}

	// stopEnded finishes a cycle whose job was cancelled or ended under it.
	stopEnded := func(err error) {
		log.Info().Err(err).Msg("job ended (cancelled or done) while the cycle ran: stopped")
		if _, ferr := bus.EndCycle(context.WithoutCancel(ctx), r.res, key, c.Number, bus.StatusFailed, "stopped: the job ended"); ferr != nil {
			log.Warn().Err(ferr).Msg("record end of stopped cycle")
		}
		releaseLease()
		_ = msg.Ack()
	}
	jobEnded := func(err error) bool {
		return errors.Is(context.Cause(wctx), bus.ErrJobEnded) || errors.Is(err, bus.ErrJobEnded)
	}

	if err := r.mirror.Fetch(wctx); jobEnded(err) {
		stopEnded(err)
		return
	} else if err != nil {
		log.Error().Err(err).Msg("fetch mirror: cycle given back")
		giveBack("runner "+cy.Runner+" could not fetch its mirror; given back", 30*time.Second)
		return
	}
	wt, err := r.mirror.Add(wctx, jp.Branch)
	if err != nil && jobEnded(err) {
		stopEnded(err)
		return
	}
	if err != nil {
		log.Error().Err(err).Msg("make worktree: cycle given back")
		giveBack("runner "+cy.Runner+" could not make a worktree; given back", time.Minute)
		return
	}
	defer func() {
		if err := wt.Release(context.WithoutCancel(ctx)); err != nil {
			log.Warn().Err(err).Msg("clean worktree")
		}
	}()
	cy.Worktree = wt
	cy.redact = proc.NewRedactor(append(r.passedSecrets(), lease.proof)...)
	cy.tokens = &tokenSource{nc: r.nc, job: key, runner: cy.Runner, proof: lease.proof, redact: cy.redact}
	cy.exec = &proc.Runner{LogDir: r.logDir(c), Redactor: cy.redact, PassEnv: r.cfg.PassEnv, Sink: r.logSink(key, c.Number)}
	cy.Reporter = newReporter(cy, r.deps.HTTP, r.cfg.GitHubAPIURL, r.pacer())
	log.Info().Str("dir", wt.Dir).Str("branch", wt.Branch).Bool("resumed", wt.Resumed).Str("phase", jp.Phase).Msg("cycle started")

	err = runWorkflow(wctx, r.deps.Workflow, cy)
	cause := context.Cause(wctx)
	switch {
	case r.forceCtx.Err() != nil:
		log.Warn().Err(err).Msg("forced stop: cycle given back for another runner")
		giveBack("runner "+cy.Runner+" was stopped; given back for another runner", 0)
		return
	case jobEnded(err):
		stopEnded(err)
		return
	case errors.Is(cause, ErrLeaseLost) || errors.Is(err, ErrLeaseLost):
		log.Error().Err(err).Msg("lease lost: another runner has the job; stopping")
		released = true // not ours to delete
		return
	case IsTransient(err):
		log.Warn().Err(err).Msg("transient failure: cycle given back to try again")
		giveBack("retrying after: "+err.Error(), 30*time.Second)
		return
	case busUnavailable(err):
		log.Warn().Err(err).Msg("NATS did not answer: cycle given back to resume from its last recorded phase")
		giveBack("retrying after NATS did not answer: "+err.Error(), 5*time.Second)
		return
	}

	status, note := bus.StatusWaitingReview, "cycle complete"
	if err != nil {
		status, note = bus.StatusFailed, clipNote(cy.redact.String(err.Error()))
		log.Error().Err(err).Msg("cycle failed")
	}
	// The result is ours to record only while the lease is.
	if err := lease.renew(wctx); err != nil {
		log.Error().Err(err).Msg("lease lost before the end: stopping without recording")
		released = true
		return
	}
	r.uploadLogs(wctx, c)
	final, err := bus.EndCycle(wctx, r.res, key, c.Number, status, note)
	if err != nil {
		log.Error().Err(err).Msg("record end of cycle: given back")
		releaseLease()
		_ = msg.NakWithDelay(5 * time.Second)
		return
	}
	cy.mu.Lock()
	cy.job = *final
	cy.mu.Unlock()
	if err := cy.Reporter.UpdateStatus(wctx); err != nil {
		log.Warn().Err(err).Msg("update status comment")
	}
	// Free the job for its next cycle before the ack: a redelivery of this
	// one finds it finished and is acknowledged without work.
	cancel(nil)
	keep.Wait()
	releaseLease()
	if err := msg.DoubleAck(context.WithoutCancel(ctx)); err != nil {
		log.Warn().Err(err).Msg("ack cycle")
	}
	log.Info().Str("status", string(status)).Dur("took", time.Since(cy.Started)).Msg("cycle finished")
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

func runWorkflow(ctx context.Context, w Workflow, c *Cycle) (err error) {
	defer func() {
		if p := recover(); p != nil {
			zerolog.Ctx(ctx).Error().Interface("panic", p).Str("stack", string(debug.Stack())).Msg("workflow panicked")
			err = fmt.Errorf("workflow panicked: %v", p)
		}
	}()
	return w.Run(ctx, c)
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

// keepAlive renews the lease and tells JetStream the cycle is in progress
// until ctx ends; losing the lease cancels ctx with ErrLeaseLost.
func (r *Runner) keepAlive(ctx context.Context, cancel context.CancelCauseFunc, msg jetstream.Msg, l *lease, ackWait time.Duration) {
	every := min(r.leaseTTL, ackWait) / 4
	t := time.NewTicker(every)
	defer t.Stop()
	renewed := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := msg.InProgress(); err != nil {
			zerolog.Ctx(ctx).Warn().Err(err).Msg("in progress")
		}
		if j, _, err := bus.GetJob(ctx, r.res.Jobs, l.key); err == nil && j.Status.Terminal() {
			zerolog.Ctx(ctx).Info().Str("status", string(j.Status)).Msg("job ended while its cycle ran: stopping it")
			cancel(fmt.Errorf("job %s is %s: %w", l.key, j.Status, bus.ErrJobEnded))
			return
		}
		err := l.renew(ctx)
		if err == nil {
			renewed = time.Now()
			continue
		}
		if ctx.Err() != nil {
			return
		}
		// A revision mismatch means someone else wrote the lease (ours had
		// expired); any other error may pass, until the TTL is spent.
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || time.Since(renewed) >= r.leaseTTL {
			zerolog.Ctx(ctx).Error().Err(err).Msg("lease lost")
			cancel(fmt.Errorf("%w: %v", ErrLeaseLost, err))
			return
		}
		zerolog.Ctx(ctx).Warn().Err(err).Msg("renew lease: will retry")
	}
}

// watchJob stops the cycle (cancels ctx with bus.ErrJobEnded) the moment the
// job's record turns terminal, e.g. on /onboard cancel, so a running step is
// not left to finish its work. keepAlive's periodic look stays as the fallback
// should the watch break.
func (r *Runner) watchJob(ctx context.Context, cancel context.CancelCauseFunc, key string) {
	w, err := r.res.Jobs.Watch(ctx, key, jetstream.UpdatesOnly())
	if err != nil {
		if ctx.Err() == nil {
			zerolog.Ctx(ctx).Warn().Err(err).Msg("watch job: cancellation is noticed at the next lease renewal instead")
		}
		return
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			var j bus.Job
			if json.Unmarshal(e.Value(), &j) != nil || !j.Status.Terminal() {
				continue
			}
			zerolog.Ctx(ctx).Info().Str("status", string(j.Status)).Msg("job ended while its cycle ran: stopping it")
			cancel(fmt.Errorf("job %s is %s: %w", key, j.Status, bus.ErrJobEnded))
			return
		}
	}
}

// lease is this runner's hold on a job in LeaseBucket.
type lease struct {
	kv    jetstream.KeyValue
	key   string
	value bus.Lease
	// proof is the secret whose hash value holds: the token broker's proof
	// that this runner holds the lease. Memory only.
	proof string
	mu    sync.Mutex
	rev   uint64
}

var errLeaseHeld = errors.New("another runner holds the job's lease")

func (r *Runner) acquireLease(ctx context.Context, key string, cycle int, gpus []int) (*lease, error) {
	secret, hash := bus.NewLeaseProof()
	l := &lease{kv: r.res.Leases, key: key, proof: secret,
		value: bus.Lease{Runner: r.cfg.Name, Cycle: cycle, GPUs: gpus, Renewed: time.Now().UTC(), ProofSHA256: hash}}
	b, _ := json.Marshal(l.value)
	for range 3 {
		rev, err := l.kv.Create(ctx, key, b)
		if err == nil {
			l.rev = rev
			return l, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, fmt.Errorf("take lease on %s: %w", key, err)
		}
		e, err := l.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			continue // expired meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("read lease on %s: %w", key, err)
		}
		var held bus.Lease
		_ = json.Unmarshal(e.Value(), &held)
		if held.Runner != r.cfg.Name {
			return nil, fmt.Errorf("job %s: %w (%s, renewed %s)", key, errLeaseHeld, held.Runner, held.Renewed.Format(time.RFC3339))
		}
		// Our own lease from before a restart: take it over.
		if rev, err := l.kv.Update(ctx, key, b, e.Revision()); err == nil {
			l.rev = rev
			return l, nil
		}
	}
	return nil, fmt.Errorf("take lease on %s: lost the race three times", key)
}

func (l *lease) renew(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.value.Renewed = time.Now().UTC()
	b, _ := json.Marshal(l.value)
	rev, err := l.kv.Update(ctx, l.key, b, l.rev)
	if err != nil {
		return fmt.Errorf("renew lease on %s: %w", l.key, err)
	}
	l.rev = rev
	return nil
}

func (l *lease) release(ctx context.Context) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := l.kv.Delete(ctx, l.key, jetstream.LastRevision(l.rev)); err != nil {
		zerolog.Ctx(ctx).Debug().Err(err).Msg("release lease")
	}
}

// logSink publishes a cycle's output chunks for live viewers.
func (r *Runner) logSink(job string, cycle int) func(proc.Chunk) {
	subject := LogSubjectPrefix + job
	return func(ch proc.Chunk) {
		b, err := json.Marshal(LogChunk{Cycle: cycle, Step: ch.Step, Seq: ch.Seq, Stream: ch.Stream, Data: string(ch.Data)})
		if err == nil {
			_ = r.nc.Publish(subject, b)
		}
	}
}

// uploadLogs copies the cycle's (already redacted) log files to the log
// object store as <job>/cycle-<n>/<file>.
func (r *Runner) uploadLogs(ctx context.Context, c bus.Cycle) {
	dir := r.logDir(c)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		name := fmt.Sprintf("%s/cycle-%d/%s", c.JobKey, c.Number, e.Name())
		if _, err := r.res.Logs.Put(ctx, jetstream.ObjectMeta{Name: name}, f); err != nil {
			zerolog.Ctx(ctx).Warn().Err(err).Str("log", name).Msg("upload log")
		}
		f.Close()
	}
}
