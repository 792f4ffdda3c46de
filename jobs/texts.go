package jobs

import (
	"fmt"
	"strings"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/onboarding/hub"
	"github.com/nvidia/adbot/onboarding/statuscomment"
)

// The bot's replies. Each begins with [AGENT]. Text from a payload appears
// only inside a code span, clipped, with backticks removed.

func code(s string) string {
	s = strings.NewReplacer("`", "'", "\n", " ", "\r", " ").Replace(clip(s, 100))
	return "`" + s + "`"
}

func failedText(user string, kind bus.CommandKind, delivery string) string {
	return fmt.Sprintf("%s @%s I could not carry out this %s request: it failed in a way that trying again will not fix. "+
		"A maintainer finds why in the server's log under delivery %s.", agentPrefix, user, code(string(kind)), code(delivery))
}

func deniedText(user, bot string) string {
	return fmt.Sprintf("%s Hi @%s, thanks for the request! Only people with write access to this repository can ask %s "+
		"to onboard a model or steer a job, so I'll leave this one to a maintainer. "+
		"(I say this once per issue.)", agentPrefix, user, bot)
}

func invalidIDText(user, id string, err error) string {
	what := "onboard " + code(id)
	if strings.TrimSpace(id) == "" {
		// A labeled issue that names no model: no empty code span.
		what = "tell which model to onboard"
	}
	return fmt.Sprintf("%s @%s I can't %s: %s.\n\n"+
		"Write the HuggingFace repo id as `onboard <org>/<name>`, for example `onboard Qwen/Qwen3-0.6B`, "+
		"in the issue title or its first line (a `https://huggingface.co/<org>/<name>` link works too).",
		agentPrefix, user, what, strings.TrimSuffix(explain(err), "."))
}

// explain turns hub.ValidateModelID's error into a sentence without repeating the id.
func explain(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, ": "); i >= 0 && strings.HasPrefix(msg, "model id \"") {
		return msg[i+2:]
	}
	return msg
}

func hubRefusalText(user string, e *hub.Error) string {
	var why string
	switch e.Reason {
	case hub.ReasonNotFound:
		why = "the HuggingFace Hub has no model by that id (or it is private and my token cannot see it). Check the spelling and the organization."
	case hub.ReasonGated:
		why = "the model is gated: the HuggingFace token I use must be granted access on the model's page first. Once it is, comment `/onboard " + e.ModelID + "` here to try again."
	case hub.ReasonRevision:
		why = "the Hub has no such revision of it."
	case hub.ReasonDisabled:
		why = "the model is disabled on the HuggingFace Hub."
	case hub.ReasonUnauthorized:
		why = "the Hub refused my token for it (private or gated)."
	default:
		// The Hub's own words are its text, not ours: quoted, clipped.
		why = fmt.Sprintf("the HuggingFace Hub answered %d", e.Status)
		if e.Message != "" {
			why += ": " + code(e.Message)
		}
		why += "."
	}
	return fmt.Sprintf("%s @%s I can't onboard %s: %s", agentPrefix, user, code(e.ModelID), why)
}

func badHubAnswerText(user, id string) string {
	return fmt.Sprintf("%s @%s I can't onboard %s: the HuggingFace Hub's answer for it names no model id "+
		"or commit I can use, so I stopped there. The server's log says what it answered.", agentPrefix, user, code(id))
}

func existingJobText(user string, j *bus.Job) string {
	return fmt.Sprintf("%s @%s this issue already has a job: onboarding %s, **%s**%s. "+
		"See the status comment above; `/onboard cancel` ends it.",
		agentPrefix, user, code(j.ModelID), j.Status, noteSuffix(j))
}

func remoteCodeText(user string, j *bus.Job) string {
	return fmt.Sprintf("%s @%s %s ships its own modeling code (its config has an `auto_map`), so running it means "+
		"running code from its repository on our GPU hosts. A maintainer must review that code and comment "+
		"`/onboard proceed` before I start.", agentPrefix, user, code(j.ModelID))
}

func noJobText(user string) string {
	return fmt.Sprintf("%s @%s there is no onboarding job here. Open an issue titled `onboard <org>/<name>` to start one.",
		agentPrefix, user)
}

func nothingAwaitsText(user string, j *bus.Job) string {
	return fmt.Sprintf("%s @%s nothing here waits for approval: the job is **%s**%s.", agentPrefix, user, j.Status, noteSuffix(j))
}

func alreadyEndedText(user string, j *bus.Job) string {
	return fmt.Sprintf("%s @%s the job has already ended (**%s**%s).", agentPrefix, user, j.Status, noteSuffix(j))
}

func cannotRetryText(user string, j *bus.Job) string {
	hint := ""
	switch {
	case j.Status == bus.StatusQueued || j.Status == bus.StatusRunning:
		hint = " A cycle is already under way."
	case j.Status.Terminal():
		// On the issue: on the pull request, where a retry often comes
		// from, "/onboard <model>" is no command.
		hint = fmt.Sprintf(" To start over, comment `/onboard %s` on issue #%d.", j.ModelID, j.Issue)
	case j.Status == bus.StatusAwaitingApproval:
		hint = " It waits for `/onboard proceed`."
	case j.Status == bus.StatusWaitingReview:
		hint = " Review comments on the pull request start the next cycle."
	}
	return fmt.Sprintf("%s @%s `/onboard retry` runs a failed cycle again, but the job is **%s**.%s",
		agentPrefix, user, j.Status, hint)
}

func statusText(user string, j *bus.Job, q queued) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s @%s onboarding %s: **%s**%s.", agentPrefix, user, code(j.ModelID), j.Status, noteSuffix(j))
	if j.Phase != "" {
		fmt.Fprintf(&b, " Last phase done: %s.", j.Phase)
	}
	if q.Position > 0 {
		fmt.Fprintf(&b, " %s for %s %s ahead or with it.", statuscomment.Count(q.Position, "cycle"),
			statuscomment.Count(j.GPUs, "GPU"), waits(q.Position))
	}
	if q.Reason != "" && !strings.HasPrefix(j.Note, "waiting for") {
		fmt.Fprintf(&b, " It is %s.", q.Reason)
	}
	if j.Runner != "" {
		fmt.Fprintf(&b, " Runner `%s`.", j.Runner)
	}
	if j.PR != 0 {
		fmt.Fprintf(&b, " Pull request #%d.", j.PR)
	}
	if len(j.PendingFeedback) > 0 {
		n := len(j.PendingFeedback)
		fmt.Fprintf(&b, " %s %s for the next cycle.", statuscomment.Count(n, "review remark"), waits(n))
	}
	b.WriteString(" The status comment above has the details.")
	return b.String()
}

// waits agrees with a count: "1 cycle waits", "2 cycles wait".
func waits(n int) string {
	if n == 1 {
		return "waits"
	}
	return "wait"
}

func untestedApprovalText(user, approved, tested string) string {
	if tested == "" {
		return fmt.Sprintf("%s @%s thanks for the approval, but I have not tested any head of this pull request yet, "+
			"so it does not end the job. Approve again once my tests have run.", agentPrefix, user)
	}
	return fmt.Sprintf("%s @%s thanks for the approval, but it is for %s while the head I last tested is %s, "+
		"so it does not end the job. Approve again once my tests have run on the new head.",
		agentPrefix, user, code(short(approved)), code(short(tested)))
}

func (w *Worker) helpText(user, unknown string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s @%s ", agentPrefix, user)
	if unknown != "" {
		fmt.Fprintf(&b, "I did not understand %s. ", code(unknown))
	}
	fmt.Fprintf(&b, "Here is what I understand (only from people with write access):\n\n"+
		"- An issue titled `onboard <org>/<name>` (or with that as its first line), or the `%s` label on an issue "+
		"whose title (or first line) names the model: onboard that HuggingFace model into AutoDeploy.\n"+
		"- `/onboard proceed`: start a job that waits because the model runs remote code.\n"+
		"- `/onboard cancel`: stop the job.\n"+
		"- `/onboard retry`: run a failed cycle again.\n"+
		"- `/onboard status`: where the job stands.\n"+
		"- `/onboard help`: this list.\n"+
		"- Any other comment or review on the job's pull request: feedback for the next cycle "+
		"(remarks that arrive while a cycle runs go out together in the next one).\n"+
		"- An approval of the head I last tested, or a comment that says only `LGTM`, "+
		"`looks good, we're done`, `no more changes needed` or `agent work complete`: the job is done.",
		w.d.TriggerLabel)
	return b.String()
}

// maxNoteInReply bounds a job's note quoted in a reply.
const maxNoteInReply = 300

// noteSuffix is j's note as a parenthesis in a one-line reply. A runner
// writes a failed cycle's error there (up to 1,000 characters of a
// command's output): it is put on one line and clipped, so that it cannot
// open a heading, a list or a code block in the reply or flood it.
func noteSuffix(j *bus.Job) string {
	note := strings.Join(strings.Fields(j.Note), " ")
	if note == "" {
		return ""
	}
	return " (" + clip(strings.TrimSuffix(note, "."), maxNoteInReply) + ")"
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// endedText is the job's last comment: why it ended and what it leaves.
func endedText(j *bus.Job) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s Done with %s: %s.", agentPrefix, code(j.ModelID), j.Note)
	if j.HeadSHA != "" {
		fmt.Fprintf(&b, " Last tested head: %s.", code(short(j.HeadSHA)))
	}
	fmt.Fprintf(&b, " %d cycle(s)", j.Cycle)
	if j.BudgetTurns > 0 || j.BudgetUSD > 0 {
		fmt.Fprintf(&b, ", %d agent turn(s), $%.2f of agent spend", j.BudgetTurns, j.BudgetUSD)
	}
	b.WriteString(". The runner has released its worktree and lease; nothing more runs for this job.")
	return b.String()
}
