// Package statuscomment renders a job's one status comment, the comment adbot
// posts on the issue when the job starts and edits in place as it moves:
// model, revision, size, GPUs, status, the workflow's phase checklist, runner,
// queue position, elapsed time, links, cycles and budget.
//
// The server renders it when it creates a job and when a command changes the
// job; the runner renders it as phases complete. Both go through FromJob so
// that the comment reads the same whoever wrote it last.
package statuscomment

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/onboarding/sizing"
)

// Prefix begins every comment the bot writes.
const Prefix = "[AGENT]"

// Marker is a hidden line that identifies a job's status comment, so it can be
// found again among the comments if its id was lost.
func Marker(jobKey string) string { return "<!-- adbot:status " + jobKey + " -->" }

// PhaseDef is one phase of the onboarding workflow: Key is what runners record
// as done (bus.Job.Posted "<cycle>/<key>/done"), Title what the checklist shows.
type PhaseDef struct {
	Key   string
	Title string
}

// DefaultPhases are the phases of the onboarding workflow, in order, as the
// ad-model-onboard skill (SKILL.md, "Phase 0" to "Phase 13") names them.
var DefaultPhases = []PhaseDef{
	{"gather", "Gather resources"},
	{"survey", "Survey existing coverage and analyze the HF model"},
	{"model", "Write a lean prefill-only model"},
	{"canonical-ops", "Use AutoDeploy canonical ops"},
	{"register", "Register"},
	{"input-contract", "Model input contract"},
	{"tests", "Hierarchical tests"},
	{"review", "Independent review"},
	{"registry", "Model registry entries"},
	{"e2e", "AutoDeploy end-to-end run"},
	{"support-matrix", "Update the model support matrix"},
	{"cookbook", "AutoDeploy cookbook"},
	{"summary", "Summary report"},
	{"pull-request", "Pull request"},
}

// UpdatePhases are the phases of an update cycle, which answers one batch
// of review feedback.
var UpdatePhases = []PhaseDef{
	{"feedback", "Address the review feedback"},
	{"tests", "Unit tests"},
	{"e2e", "AutoDeploy end-to-end run"},
	{"pull-request", "Commit, rebase and push"},
	{"reply", "Reply in each review thread"},
}

// PhasesFor returns the checklist of a cycle of the given kind.
func PhasesFor(kind bus.CycleKind) []PhaseDef {
	if kind == bus.KindFeedback {
		return UpdatePhases
	}
	return DefaultPhases
}

// PhaseState is where one phase stands.
type PhaseState int

// The phase states.
const (
	Pending PhaseState = iota
	Current
	Done
	Failed
)

// Phase is one line of the checklist.
type Phase struct {
	Title string
	State PhaseState
}

// View is everything the status comment shows. Zero fields are left out.
type View struct {
	// JobKey identifies the job (for the hidden marker).
	JobKey string
	// ModelID is the validated HuggingFace repo id; Revision its commit SHA.
	ModelID  string
	Revision string
	// Params is the parameter count (0: unknown); SizeNote says where it came
	// from or why it is unknown.
	Params   int64
	SizeNote string
	// GPUs is the number of GPUs a cycle needs; GPUNote explains an assumption.
	GPUs    int
	GPUNote string
	// RemoteCode says the model's config runs code from its repository.
	RemoteCode bool
	Status     bus.JobStatus
	// Note says why the job is where it is ("waiting for 4 free GPUs").
	Note string
	// QueuePosition is the cycle's place among those waiting for the same GPU
	// count (1 = next; 0 = unknown or not queued).
	QueuePosition int
	Phases        []Phase
	Runner        string
	RunnerGPUs    []int
	// Created is when the job was made (how long it has waited before Started).
	Created time.Time
	// Started and Completed bound the elapsed time; Now ends it while running.
	Started   time.Time
	Completed time.Time
	Now       time.Time
	// PRURL and LogsURL link to the pull request and the newest cycle's logs.
	PR      int
	PRURL   string
	LogsURL string
	Cycle   int
	// BudgetUSD is the agent spend so far; BudgetLimitUSD the cap (0: none).
	BudgetUSD      float64
	BudgetLimitUSD float64
}

// FromJob builds the view of j at now. current is the phase running now
// ("" between phases). Phases are DefaultPhases with the ones recorded done in
// the job's newest cycle ticked, then any other phase the runner recorded.
func FromJob(j *bus.Job, current string, now time.Time) View {
	v := View{
		JobKey: j.Key, ModelID: j.ModelID, Revision: j.Revision, Params: j.Params, GPUs: j.GPUs,
		RemoteCode: j.RemoteCode, Status: j.Status, Note: j.Note, Runner: j.Runner, RunnerGPUs: j.RunnerGPUs,
		Created: j.Created, Started: j.Started, Completed: j.Completed, Now: now, PR: j.PR, Cycle: j.Cycle, BudgetUSD: j.BudgetUSD,
	}
	if j.PR != 0 && j.Owner != "" && j.Repo != "" {
		v.PRURL = fmt.Sprintf("https://github.com/%s/%s/pull/%d", j.Owner, j.Repo, j.PR)
	}
	if j.Status.Terminal() || j.Status == bus.StatusWaitingReview || j.Status == bus.StatusFailed {
		if j.Completed.IsZero() {
			v.Completed = j.Updated
		}
	} else {
		v.Completed = time.Time{}
	}
	v.SizeNote, v.GPUNote = sizeNotes(j)
	v.Phases = Checklist(PhasesFor(j.CycleKind), donePhases(j), current, j.Status == bus.StatusFailed)
	return v
}

// sizeNotes says where j's parameter count came from, or why it is unknown,
// and explains a GPU count the workflow's rule does not settle by itself.
func sizeNotes(j *bus.Job) (size, gpus string) {
	if j.Params <= 0 {
		size = j.ParamsNote
		if size == "" {
			size = "the Hub reports no safetensors parameter count"
		}
		if j.GPUs > 0 {
			gpus = "size unknown: assumed the largest"
		}
		return size, gpus
	}
	switch j.ParamsSource {
	case sizing.SourceSafetensors:
		size = "Hub safetensors"
	case sizing.SourceConfig:
		size = "estimated from config.json"
	}
	_, gpus = sizing.WorldSize(j.Params)
	return size, gpus
}

// donePhases returns the phases recorded done in j's newest cycle, oldest first.
func donePhases(j *bus.Job) []string {
	type rec struct {
		key string
		at  int64
	}
	prefix := strconv.Itoa(j.Cycle) + "/"
	var recs []rec
	for k, at := range j.Posted {
		name, ok := strings.CutSuffix(strings.TrimPrefix(k, prefix), "/done")
		if ok && strings.HasPrefix(k, prefix) && !strings.Contains(name, "/") {
			recs = append(recs, rec{name, at})
		}
	}
	sort.Slice(recs, func(a, b int) bool {
		if recs[a].at != recs[b].at {
			return recs[a].at < recs[b].at
		}
		return recs[a].key < recs[b].key
	})
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.key
	}
	return out
}

// Checklist lays out defs with done ticked and current marked; phases done or
// current that defs lack are appended in the order given. With failed, the
// current phase (or, between phases, the first one not done) is marked failed.
func Checklist(defs []PhaseDef, done []string, current string, failed bool) []Phase {
	isDone := map[string]bool{}
	for _, d := range done {
		isDone[d] = true
	}
	known := map[string]bool{}
	var out []Phase
	add := func(key, title string) {
		st := Pending
		switch {
		case key == current && current != "":
			st = Current
		case isDone[key]:
			st = Done
		}
		out = append(out, Phase{Title: title, State: st})
	}
	for _, d := range defs {
		known[d.Key] = true
		add(d.Key, d.Title)
	}
	for _, d := range done {
		if !known[d] {
			known[d] = true
			add(d, d)
		}
	}
	if current != "" && !known[current] {
		add(current, current)
	}
	if failed {
		for i := range out {
			if out[i].State == Current {
				out[i].State = Failed
				return out
			}
		}
		for i := range out {
			if out[i].State == Pending {
				out[i].State = Failed
				return out
			}
		}
	}
	return out
}

var statusWords = map[bus.JobStatus]string{
	bus.StatusAwaitingApproval: "⏸️ awaiting approval",
	bus.StatusQueued:           "⏳ queued",
	bus.StatusRunning:          "⚙️ running",
	bus.StatusWaitingReview:    "👀 waiting for review",
	bus.StatusFailed:           "❌ failed",
	bus.StatusCancelled:        "🚫 cancelled",
	bus.StatusDone:             "✅ done",
}

// Render returns the comment's Markdown. It begins with Prefix.
func Render(v View) string {
	var b strings.Builder
	b.WriteString(Prefix + " **Onboarding")
	if v.ModelID != "" {
		fmt.Fprintf(&b, " `%s`", v.ModelID)
	}
	b.WriteString("**\n")
	if v.JobKey != "" {
		b.WriteString(Marker(v.JobKey) + "\n")
	}
	b.WriteString("\n| | |\n| --- | --- |\n")
	row := func(k, val string) {
		if val != "" {
			fmt.Fprintf(&b, "| %s | %s |\n", k, cell(val))
		}
	}
	if v.ModelID != "" {
		row("Model", fmt.Sprintf("[`%s`](https://huggingface.co/%s)", v.ModelID, v.ModelID))
	}
	if v.Revision != "" {
		row("Revision", fmt.Sprintf("`%s`", short(v.Revision)))
	}
	size := ""
	if v.Params > 0 {
		size = Params(v.Params) + " " + plural(v.Params, "parameter")
	} else if v.ModelID != "" {
		size = "unknown"
	}
	if v.SizeNote != "" {
		size += " (" + v.SizeNote + ")"
	}
	row("Size", size)
	if v.GPUs > 0 {
		g := strconv.Itoa(v.GPUs)
		if v.GPUNote != "" {
			g += " (" + v.GPUNote + ")"
		}
		row("GPUs needed", g)
	}
	if v.RemoteCode {
		row("Remote code", "yes: the model's config runs code from its repository (`auto_map`)")
	}
	st := statusWords[v.Status]
	if st == "" {
		st = string(v.Status)
	}
	if st != "" {
		st = "**" + st + "**"
		if v.Note != "" {
			st += ": " + v.Note
		}
		if v.QueuePosition > 0 && v.Status == bus.StatusQueued {
			st += fmt.Sprintf(" (position %d in the queue for %s)", v.QueuePosition, Count(v.GPUs, "GPU"))
		}
	}
	row("Status", st)
	if v.Runner != "" {
		r := fmt.Sprintf("`%s`", v.Runner)
		if len(v.RunnerGPUs) > 0 {
			r += ", " + plural(len(v.RunnerGPUs), "GPU") + " " + joinInts(v.RunnerGPUs)
		}
		row("Runner", r)
	}
	if !v.Started.IsZero() {
		end := v.Completed
		if end.IsZero() {
			end = v.Now
		}
		if !end.IsZero() && !end.Before(v.Started) {
			row("Elapsed", Duration(end.Sub(v.Started)))
		}
	}
	if v.Started.IsZero() && !v.Created.IsZero() && !v.Now.IsZero() && !v.Now.Before(v.Created) &&
		(v.Status == bus.StatusQueued || v.Status == bus.StatusAwaitingApproval) {
		row("Waiting", Duration(v.Now.Sub(v.Created)))
	}
	if v.Cycle > 0 {
		row("Cycle", strconv.Itoa(v.Cycle))
	}
	if v.BudgetUSD > 0 || v.BudgetLimitUSD > 0 {
		bu := fmt.Sprintf("$%.2f", v.BudgetUSD)
		if v.BudgetLimitUSD > 0 {
			bu += fmt.Sprintf(" of $%.2f", v.BudgetLimitUSD)
		}
		row("Budget used", bu)
	}
	switch {
	case v.PRURL != "" && v.PR != 0:
		row("Pull request", fmt.Sprintf("[#%d](%s)", v.PR, v.PRURL))
	case v.PR != 0:
		row("Pull request", fmt.Sprintf("#%d", v.PR))
	}
	if v.LogsURL != "" {
		row("Logs", fmt.Sprintf("[cycle %d](%s)", v.Cycle, v.LogsURL))
	}
	if len(v.Phases) > 0 {
		b.WriteString("\n**Phases**\n\n")
		for _, p := range v.Phases {
			switch p.State {
			case Done:
				fmt.Fprintf(&b, "- [x] %s\n", p.Title)
			case Current:
				fmt.Fprintf(&b, "- [ ] **%s** ← running\n", p.Title)
			case Failed:
				fmt.Fprintf(&b, "- [ ] **%s** ← failed\n", p.Title)
			default:
				fmt.Fprintf(&b, "- [ ] %s\n", p.Title)
			}
		}
	}
	b.WriteString("\n<sub>Commands: `/onboard status`, `/onboard cancel`, `/onboard retry`, `/onboard help`.</sub>\n")
	return b.String()
}

// Params formats a parameter count: 751632384 → "751.6M", 8190735360 → "8.19B".
func Params(n int64) string {
	switch {
	case n >= 1e12:
		return trimZeros(fmt.Sprintf("%.2f", float64(n)/1e12)) + "T"
	case n >= 1e9:
		return trimZeros(fmt.Sprintf("%.2f", float64(n)/1e9)) + "B"
	case n >= 1e6:
		return trimZeros(fmt.Sprintf("%.1f", float64(n)/1e6)) + "M"
	case n >= 1e3:
		return trimZeros(fmt.Sprintf("%.1f", float64(n)/1e3)) + "K"
	}
	return strconv.FormatInt(n, 10)
}

// Count renders n things: "1 GPU", "4 GPUs", "0 remarks". noun is the
// singular; its plural adds an s.
func Count[N int | int64](n N, noun string) string {
	return fmt.Sprintf("%d %s", n, plural(n, noun))
}

// plural is noun for one, noun+"s" for any other count.
func plural[N int | int64](n N, noun string) string {
	if n == 1 {
		return noun
	}
	return noun + "s"
}

func trimZeros(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// Duration formats d for people: "45s", "3m 12s", "2h 05m", "1d 3h".
func Duration(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm %02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh %02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd %dh", int(d.Hours())/24, int(d.Hours())%24)
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ", ")
}

// cell keeps a value inside one Markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "\r", "")
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "|", `\|`)
}
