package jobs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/onboarding/hub"
	"github.com/nvidia/adbot/onboarding/sizing"
)

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
			log.Debug().Str(bus.LogKeyJob, key).Msg("Issue already has a job")
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
		log.Info().Str(bus.LogKeyJob, key).Int("gpus", j.GPUs).Int64("params", j.Params).Str("params_source", j.ParamsSource).
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
