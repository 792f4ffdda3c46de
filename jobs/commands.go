package jobs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/google/go-github/v62/github"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/onboarding/hub"
	"github.com/nvidia/adbot/onboarding/sizing"
)

// process carries out one command: authorization first, then 👀, then the
// command itself.
func (w *Worker) process(ctx context.Context, st *state) error {
	c := st.c
	if c.Owner == "" || c.Repo == "" || c.Issue <= 0 {
		return &permanentError{fmt.Errorf("command %s names no repository or issue", c.Kind)}
	}
	gh, err := w.installationClient(ctx, c)
	if err != nil {
		return err
	}
	st.gh = gh

	// A pull request being closed is a fact, not a request: nobody to authorize.
	fact := c.Kind == bus.CmdEnd && (c.Reason == "merged" || c.Reason == "closed")
	if !fact {
		ok, err := w.authorized(ctx, gh, c.Owner, c.Repo, c.Actor, c.ActorAssociation)
		if err != nil {
			return err
		}
		if !ok {
			return w.deny(ctx, st)
		}
		// A settling remark comes back once more; its first pass reacted.
		if !st.rec.Settling {
			if err := w.react(ctx, st); err != nil {
				return err
			}
		}
	}

	switch c.Kind {
	case bus.CmdOnboard:
		return w.onboard(ctx, st)
	case bus.CmdFeedback:
		return w.feedback(ctx, st)
	case bus.CmdProceed:
		return w.proceed(ctx, st)
	case bus.CmdCancel:
		return w.cancel(ctx, st)
	case bus.CmdRetry:
		return w.retry(ctx, st)
	case bus.CmdStatus:
		return w.status(ctx, st)
	case bus.CmdHelp:
		return st.reply(ctx, "help", w.helpText(c.Actor, c.Reason))
	case bus.CmdEnd:
		return w.end(ctx, st)
	}
	return &permanentError{fmt.Errorf("unknown command kind %q", c.Kind)}
}

// installationClient returns a client for the command's installation, asking
// GitHub for the repository's installation when the payload had none.
func (w *Worker) installationClient(ctx context.Context, c bus.Command) (*github.Client, error) {
	id := c.InstallationID
	if id == 0 {
		app, err := w.d.Clients.NewAppClient()
		if err != nil {
			return nil, fmt.Errorf("app client: %w", err)
		}
		inst, _, err := app.Apps.FindRepositoryInstallation(ctx, c.Owner, c.Repo)
		if err != nil {
			return nil, fmt.Errorf("find installation of %s/%s: %w", c.Owner, c.Repo, err)
		}
		id = inst.GetID()
	}
	gh, err := w.d.Clients.NewInstallationClient(id)
	if err != nil {
		return nil, fmt.Errorf("installation client %d: %w", id, err)
	}
	return gh, nil
}

// react puts 👀 on the comment that carried the command (an issue comment or
// a review's line comment), or on the issue that did. A comment deleted
// meanwhile is no reason to drop the command: only a failure worth retrying is
// returned.
func (w *Worker) react(ctx context.Context, st *state) error {
	c := st.c
	var err error
	switch {
	case c.ReviewCommentID != 0:
		_, _, err = st.gh.Reactions.CreatePullRequestCommentReaction(ctx, c.Owner, c.Repo, c.ReviewCommentID, "eyes")
		if err != nil {
			err = fmt.Errorf("react to review comment %d on %s/%s: %w", c.ReviewCommentID, c.Owner, c.Repo, err)
		}
	case c.CommentID != 0:
		_, _, err = st.gh.Reactions.CreateIssueCommentReaction(ctx, c.Owner, c.Repo, c.CommentID, "eyes")
		if err != nil {
			err = fmt.Errorf("react to comment %d on %s/%s: %w", c.CommentID, c.Owner, c.Repo, err)
		}
	case strings.HasPrefix(c.Event, "issues."):
		_, _, err = st.gh.Reactions.CreateIssueReaction(ctx, c.Owner, c.Repo, c.Issue, "eyes")
		if err != nil {
			err = fmt.Errorf("react to %s/%s#%d: %w", c.Owner, c.Repo, c.Issue, err)
		}
	}
	if err != nil {
		if ok, _ := Transient(err); ok {
			return err
		}
		zerolog.Ctx(ctx).Info().Err(err).Msg("Could not react; going on")
	}
	return nil
}

// reply posts an [AGENT] comment on the command's issue once per delivery:
// what names the reply within the delivery.
func (st *state) reply(ctx context.Context, what, body string) error {
	if _, ok := st.rec.Replies[what]; ok {
		return nil
	}
	id, err := st.w.comment(ctx, st.gh, st.c.Owner, st.c.Repo, st.c.Issue, body)
	if err != nil {
		return err
	}
	if st.rec.Replies == nil {
		st.rec.Replies = map[string]int64{}
	}
	st.rec.Replies[what] = id
	return st.save(ctx)
}

// comment posts body (which must begin with [AGENT]) on an issue.
func (w *Worker) comment(ctx context.Context, gh *github.Client, owner, repo string, issue int, body string) (int64, error) {
	if !strings.HasPrefix(body, agentPrefix) {
		body = agentPrefix + " " + body
	}
	cm, _, err := gh.Issues.CreateComment(ctx, owner, repo, issue, &github.IssueComment{Body: &body})
	if err != nil {
		return 0, fmt.Errorf("comment on %s/%s#%d: %w", owner, repo, issue, err)
	}
	return cm.GetID(), nil
}

// onboard validates the model id, asks the Hub, creates the job, posts its
// status comment and publishes its first cycle (or waits for /onboard proceed).
func (w *Worker) onboard(ctx context.Context, st *state) error {
	c := st.c
	log := zerolog.Ctx(ctx)
	idErr := hub.ValidateModelID(c.ModelID)
	key := bus.JobKey(c.Owner, c.Repo, c.Issue)
	createdHere := "cmd/" + c.DeliveryID + "/created"
	existing, rev, err := bus.GetJob(ctx, w.d.Bus.Jobs, key)
	switch {
	case errors.Is(err, bus.ErrNoJob):
		existing = nil
	case err != nil:
		return err
	}
	if existing != nil && existing.Posted[createdHere] == 0 && !existing.Status.Terminal() {
		if strings.HasPrefix(c.Event, "issues.") && (existing.ModelID == c.ModelID || idErr != nil) {
			// An issue opened with the trigger label already on it, or edited
			// or labeled without naming another model, arrives as several
			// events: one job, no noise.
			log.Debug().Str(LogKeyJob, key).Msg("Issue already has a job")
			return nil
		}
		// One job per issue: say where the one there stands.
		return st.reply(ctx, "existing", existingJobText(c.Actor, existing))
	}
	if idErr != nil {
		log.Info().Err(idErr).Msg("Invalid model id")
		return st.reply(ctx, "invalid-id", invalidIDText(c.Actor, c.ModelID, idErr))
	}
	var j *bus.Job
	// earlier: an earlier attempt of this delivery wrote the job, so it may
	// have posted the status comment without recording it.
	earlier := existing != nil && existing.Posted[createdHere] != 0
	if earlier {
		j = existing // this delivery made it before; finish what is left
	} else {
		m, err := w.d.Hub.Model(ctx, c.ModelID, "")
		if err != nil {
			var he *hub.Error
			if errors.As(err, &he) && !he.Temporary() {
				log.Info().Err(err).Msg("Hub refused the model")
				return st.reply(ctx, "hub", hubRefusalText(c.Actor, he))
			}
			return fmt.Errorf("preflight %s: %w", c.ModelID, err)
		}
		if err := usableHubAnswer(m); err != nil {
			// The id and revision go on to runners, branch names and
			// comments: a Hub (or mirror) answering anything else is not
			// believed, and retrying will not change its answer.
			log.Warn().Err(err).Msg("Hub answer unusable")
			return st.reply(ctx, "hub", badHubAnswerText(c.Actor, c.ModelID))
		}
		if m.Disabled {
			return st.reply(ctx, "hub", hubRefusalText(c.Actor, &hub.Error{ModelID: c.ModelID, Reason: hub.ReasonDisabled}))
		}
		size, err := w.sizeOf(ctx, m)
		if err != nil {
			return err
		}
		j = w.newJob(c, m, size, existing)
		j.Posted = map[string]int64{createdHere: 1}
		if existing == nil {
			rev, err = bus.CreateJob(ctx, w.d.Bus.Jobs, j)
			if errors.Is(err, jetstream.ErrKeyExists) {
				return fmt.Errorf("create job %s: another command made it meanwhile: %w", key, err)
			} else if err != nil {
				return err
			}
		} else {
			rev = 0 // UpdateJob does not say
			// The issue's last job ended: this request starts it over, keeping
			// the cycle count so that cycle message ids stay unique.
			prev := existing
			j, err = bus.UpdateJob(ctx, w.d.Bus.Jobs, key, func(cur *bus.Job) error {
				if !cur.Status.Terminal() || cur.Updated != prev.Updated {
					return fmt.Errorf("restart job %s: it changed meanwhile", key)
				}
				fresh := w.newJob(c, m, size, cur)
				fresh.Posted = map[string]int64{createdHere: 1}
				*cur = *fresh
				return nil
			})
			if err != nil {
				return err
			}
		}
		log.Info().Str(LogKeyJob, key).Int("gpus", j.GPUs).Int64("params", j.Params).Str("params_source", j.ParamsSource).
			Bool("remote_code", j.RemoteCode).
			Msg("Job created")
	}

	if j.Status == bus.StatusAwaitingApproval {
		if err := w.ensureStatusComment(ctx, st.gh, j, earlier); err != nil {
			return err
		}
		return st.reply(ctx, "remote-code", remoteCodeText(c.Actor, j))
	}
	return w.publishFirst(ctx, st, j, rev, earlier)
}

// publishFirst posts the status comment of j (queued, just written by this
// delivery) as it will read once its first cycle is out, then records the
// comment and queues the cycle in one compare-and-swap, and publishes it. The
// comment is edited afterwards only if the job then reads differently. rev is
// the revision j was read or written at (0: unknown).
func (w *Worker) publishFirst(ctx context.Context, st *state, j *bus.Job, rev uint64, earlier bool) error {
	var (
		id     int64
		posted bool
		staged bus.Job // the job as the posted comment shows it
		q      queued  // and its queue figures
	)
	if j.StatusCommentID == 0 {
		staged = *j
		staged.Cycle++
		staged.Outbox = nil
		q = w.queueOf(ctx, &staged)
		var err error
		id, posted, err = w.postStatusComment(ctx, st.gh, j, earlier, w.view(ctx, &staged))
		if err != nil {
			return err
		}
	}
	check := func(cur *bus.Job) error {
		if cur.Cycle > j.Cycle || (earlier && cur.Cycle > 0) {
			// Staged by an earlier try of this delivery (whose publish may
			// have failed: Enqueue publishes the outbox still there).
			return bus.ErrUnchanged
		}
		if cur.StatusCommentID == 0 {
			cur.StatusCommentID = id
		}
		return nil
	}
	var out *bus.Job
	var err error
	if rev != 0 {
		out, err = bus.EnqueueAt(ctx, w.d.Bus, j, rev, bus.KindOnboard, nil, st.c.DeliveryID, check)
	} else {
		out, err = bus.Enqueue(ctx, w.d.Bus, j.Key, bus.KindOnboard, nil, st.c.DeliveryID, check)
	}
	if errors.Is(err, bus.ErrJobEnded) {
		// Cancelled meanwhile: keep the comment, and let it say so.
		if id == 0 {
			return nil
		}
		if err := w.recordStatusComment(ctx, j, id); err != nil {
			return err
		}
		return w.refreshStatus(ctx, st.gh, j)
	}
	if err != nil {
		return err
	}
	if id != 0 && out.StatusCommentID == 0 {
		// An earlier try queued the cycle without this comment.
		if err := w.recordStatusComment(ctx, out, id); err != nil {
			return err
		}
	}
	if posted && out.StatusCommentID == id && sameView(&staged, out) && w.queueOf(ctx, out) == q {
		return nil // it already reads right
	}
	return w.refreshStatus(ctx, st.gh, out)
}

// usableHubAnswer checks what a job takes from the Hub's answer as it is:
// the model's id must be a model id and its revision, when given, a commit
// SHA.
func usableHubAnswer(m *hub.Model) error {
	if err := hub.ValidateModelID(m.ID); err != nil {
		return fmt.Errorf("the Hub answered for another id: %w", err)
	}
	if m.SHA != "" && !isCommitSHA(m.SHA) {
		return fmt.Errorf("the Hub answered revision %q, not a commit SHA", clip(m.SHA, 80))
	}
	return nil
}

// isCommitSHA reports whether s is a 40-digit hexadecimal git commit id.
func isCommitSHA(s string) bool {
	if len(s) != 40 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F') {
			return false
		}
	}
	return true
}

// sameView reports whether the status comments of a and b read the same: the
// jobs differ at most in what the comment does not show (when they were
// written, the outbox, the commands' marks, the comment's own id).
func sameView(a, b *bus.Job) bool {
	x, y := *a, *b
	for _, j := range []*bus.Job{&x, &y} {
		j.Updated, j.Outbox, j.Posted, j.StatusCommentID = time.Time{}, nil, nil, 0
	}
	return reflect.DeepEqual(x, y)
}

// modelSize is a model's parameter count and where it came from
// (sizing.SourceSafetensors or sizing.SourceConfig), or, when it is unknown,
// why (note).
type modelSize struct {
	params int64
	source string
	note   string
}

// sizeOf finds m's parameter count: the Hub's safetensors total, else an
// estimate from the config.json at m's revision. A size that cannot be
// known (no config.json, an architecture the estimator does not know) is no
// error: the job then asks for the largest GPU count and says why. Only a
// failure worth retrying is returned.
func (w *Worker) sizeOf(ctx context.Context, m *hub.Model) (modelSize, error) {
	if m.Tensors != nil && m.Tensors.Total > 0 {
		return modelSize{params: m.Tensors.Total, source: sizing.SourceSafetensors}, nil
	}
	log := zerolog.Ctx(ctx)
	const none = "the Hub reports no safetensors parameter count"
	b, err := w.d.Hub.File(ctx, m.ID, m.SHA, "config.json")
	if err != nil {
		var he *hub.Error
		if !errors.As(err, &he) || he.Temporary() {
			return modelSize{}, fmt.Errorf("config.json of %s: %w", m.ID, err)
		}
		log.Info().Err(err).Msg("No config.json to size the model by")
		if he.Status == http.StatusNotFound {
			return modelSize{note: none + " and the repository has no config.json"}, nil
		}
		// The Hub's message stays in the log: the note goes into the
		// status comment.
		return modelSize{note: fmt.Sprintf("%s and the Hub answered %d for its config.json", none, he.Status)}, nil
	}
	in, err := sizing.FromModel(m, "config.json", b, "")
	if err != nil {
		log.Info().Err(err).Msg("config.json does not decode")
		return modelSize{note: none + " and " + err.Error()}, nil
	}
	p := sizing.Make(in, nil)
	if p.ParamsSource != sizing.SourceConfig || p.Params <= 0 {
		log.Info().Str("reason", p.EstimateError).Msg("Cannot estimate the model's size")
		return modelSize{note: none + " and " + p.EstimateError}, nil
	}
	return modelSize{params: p.Params, source: sizing.SourceConfig}, nil
}

// newJob describes the job an onboard command asks for; prev, when set, is
// the issue's ended job it replaces.
func (w *Worker) newJob(c bus.Command, m *hub.Model, size modelSize, prev *bus.Job) *bus.Job {
	gpus, _ := GPUsFor(size.params) // the status comment explains the count
	j := &bus.Job{
		Key: bus.JobKey(c.Owner, c.Repo, c.Issue), Owner: c.Owner, Repo: c.Repo, Issue: c.Issue,
		InstallationID: c.InstallationID, ModelID: m.ID, Revision: m.SHA, Architecture: m.Architecture(),
		Params: size.params, ParamsSource: size.source, ParamsNote: size.note, GPUs: gpus,
		RemoteCode: m.RemoteCode(), Requester: c.Actor, Status: bus.StatusQueued,
	}
	if j.ModelID == "" {
		j.ModelID = c.ModelID
	}
	if j.RemoteCode {
		j.Status = bus.StatusAwaitingApproval
		j.Note = "the model's config runs code from its repository (auto_map): a maintainer must say `/onboard proceed`"
	}
	if prev != nil {
		j.Cycle = prev.Cycle
		j.StatusCommentID = 0
		j.Created = w.d.Now().UTC()
	}
	return j
}

// GPUsFor is the GPU count for a parameter count, by the workflow's rule (1
// under 2B, 2 up to 15B, 4 up to 80B, 8 above; see sizing.WorldSize). An
// unknown count gets the largest size, so the first run cannot fail for want
// of memory, and a note saying so.
func GPUsFor(params int64) (int, string) {
	n, note := sizing.WorldSize(params)
	if n <= 0 {
		return bus.GPUSizes[len(bus.GPUSizes)-1], "parameter count unknown: assumed the largest GPU count"
	}
	if f := bus.FitGPUs(n); f != 0 {
		n = f
	}
	return n, note
}

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
	zerolog.Ctx(ctx).Info().Str(LogKeyJob, j.Key).Bool("published", published).Int("pending", len(j2.PendingFeedback)).
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
	j, err := Find(ctx, w.d.Bus.Jobs, c.Owner, c.Repo, c.Issue, c.IsPR)
	if errors.Is(err, bus.ErrNoJob) {
		zerolog.Ctx(ctx).Debug().Msgf("%s for no job", c.Kind)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if j.Status.Terminal() {
		zerolog.Ctx(ctx).Debug().Str(LogKeyJob, j.Key).Msgf("%s for an ended job", c.Kind)
		return nil, nil
	}
	return j, nil
}

// findJob finds the command's job, replying when there is none.
func (w *Worker) findJob(ctx context.Context, st *state) (*bus.Job, error) {
	c := st.c
	j, err := Find(ctx, w.d.Bus.Jobs, c.Owner, c.Repo, c.Issue, c.IsPR)
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

// proceed starts a job that waited for approval to run remote code.
func (w *Worker) proceed(ctx context.Context, st *state) error {
	return w.steer(ctx, st, move{
		what:    "proceed",
		applies: func(j *bus.Job) bool { return j.Status == bus.StatusAwaitingApproval },
		refuse:  nothingAwaitsText,
		cycle:   bus.KindOnboard,
		change:  func(j *bus.Job) { j.Note = "approved to run remote code by @" + st.c.Actor },
	})
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
			zerolog.Ctx(ctx).Info().Str(LogKeyJob, j.Key).Str("approved", c.CommitSHA).Str("tested", j.HeadSHA).
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
	j, err = bus.UpdateJob(ctx, w.d.Bus.Jobs, j.Key, func(cur *bus.Job) error {
		if cur.Status.Terminal() {
			return bus.ErrUnchanged
		}
		w.endJob(cur, bus.StatusDone, note)
		return nil
	})
	if err != nil {
		return err
	}
	zerolog.Ctx(ctx).Info().Str(LogKeyJob, j.Key).Str("reason", c.Reason).Msg("Job ended")
	return w.refreshStatus(ctx, st.gh, j)
}
