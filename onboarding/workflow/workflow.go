package workflow

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/nvidia/adbot/onboarding/e2e"
	"github.com/nvidia/adbot/onboarding/hub"
	"github.com/nvidia/adbot/onboarding/report"
)

// Defaults for Options.
const (
	DefaultAgentCmd       = "claude"
	DefaultPython         = "python3"
	DefaultMaxTurns       = 200
	DefaultPermissionMode = "acceptEdits"
	DefaultFixRounds      = 3
	DefaultReviewRounds   = 3
	DefaultReducedLayers  = 2
	DefaultAgentTimeout   = 2 * time.Hour
	DefaultTestTimeout    = 30 * time.Minute
	DefaultE2ETimeout     = 2 * time.Hour
	DefaultGitName        = "adbot[bot]"
	DefaultGitEmail       = "adbot[bot]@users.noreply.github.com"
)

// Budget bounds what one job may spend; zero fields are unbounded. Past a
// bound the job waits for /onboard proceed, which grants one more of each.
type Budget struct {
	Cycles  int
	Turns   int
	CostUSD float64
	Wall    time.Duration
}

// Options configure the workflow.
type Options struct {
	// AgentCmd is the coding agent's program (Claude Code's CLI or a
	// stand-in speaking its stream-json).
	AgentCmd       string
	AgentModel     string
	PermissionMode string
	MaxTurns       int
	// AllowedTools and DisallowedTools go to the agent as they are.
	AllowedTools, DisallowedTools []string
	// Python runs pytest and the end-to-end script.
	Python string
	// Hub answers model metadata and code files (gather).
	Hub *hub.Client
	// HFCache is the HuggingFace cache the gather phase fills
	// (hub.CacheDir of the environment when empty).
	HFCache string
	// HFCLI is the `hf` program; when it is not on PATH, gather downloads
	// through the Hub's HTTP API instead.
	HFCLI  string
	Budget Budget
	// FixRounds bounds the agent's fixes after failed tests or end-to-end
	// runs; ReviewRounds the reviews.
	FixRounds, ReviewRounds int
	// ReducedLayers is the layer count of the first, quick end-to-end run.
	ReducedLayers                         int
	AgentTimeout, TestTimeout, E2ETimeout time.Duration
	// GitName and GitEmail are the commits' author: the App's bot identity.
	GitName, GitEmail string
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	o.AgentCmd = cmp.Or(o.AgentCmd, DefaultAgentCmd)
	o.PermissionMode = cmp.Or(o.PermissionMode, DefaultPermissionMode)
	o.Python = cmp.Or(o.Python, DefaultPython)
	o.HFCLI = cmp.Or(o.HFCLI, "hf")
	o.GitName = cmp.Or(o.GitName, DefaultGitName)
	o.GitEmail = cmp.Or(o.GitEmail, DefaultGitEmail)
	o.MaxTurns = positiveOr(o.MaxTurns, DefaultMaxTurns)
	o.FixRounds = positiveOr(o.FixRounds, DefaultFixRounds)
	o.ReviewRounds = positiveOr(o.ReviewRounds, DefaultReviewRounds)
	o.ReducedLayers = positiveOr(o.ReducedLayers, DefaultReducedLayers)
	o.AgentTimeout = positiveOr(o.AgentTimeout, DefaultAgentTimeout)
	o.TestTimeout = positiveOr(o.TestTimeout, DefaultTestTimeout)
	o.E2ETimeout = positiveOr(o.E2ETimeout, DefaultE2ETimeout)
	if o.Hub == nil {
		o.Hub = &hub.Client{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// positiveOr is v, or d when v is not positive.
func positiveOr[T int | time.Duration](v, d T) T {
	if v > 0 {
		return v
	}
	return d
}

// Workflow runs onboarding cycles.
type Workflow struct {
	opt Options
}

// New returns the workflow with o's defaults filled in.
func New(o Options) *Workflow { return &Workflow{opt: o.withDefaults()} }

// Phase names of an onboarding cycle, as the status comment lists them
// (statuscomment.DefaultPhases), and of an update cycle.
const (
	PhaseGather        = "gather"
	PhaseSurvey        = "survey"
	PhaseModel         = "model"
	PhaseCanonicalOps  = "canonical-ops"
	PhaseRegister      = "register"
	PhaseInputContract = "input-contract"
	PhaseTests         = "tests"
	PhaseReview        = "review"
	PhaseRegistry      = "registry"
	PhaseE2E           = "e2e"
	PhaseSupportMatrix = "support-matrix"
	PhaseCookbook      = "cookbook"
	PhaseSummary       = "summary"
	PhasePR            = "pull-request"
	PhaseFeedback      = "feedback"
	PhaseReply         = "reply"
)

// OnboardPhases and UpdatePhases are the phases of the two cycle kinds, in order.
var (
	OnboardPhases = []string{PhaseGather, PhaseSurvey, PhaseModel, PhaseCanonicalOps, PhaseRegister, PhaseInputContract,
		PhaseTests, PhaseReview, PhaseRegistry, PhaseE2E, PhaseSupportMatrix, PhaseCookbook, PhaseSummary, PhasePR}
	UpdatePhases = []string{PhaseFeedback, PhaseTests, PhaseE2E, PhasePR, PhaseReply}
)

// Work is one piece of work a cycle does: the onboarding, or answering one
// feedback batch. A retry, or a cycle after /onboard proceed, continues it
// from its first phase not done.
type Work struct {
	Kind     CycleKind  `json:"kind"`
	Cycle    int        `json:"cycle"`
	Feedback []Feedback `json:"feedback,omitempty"`
	Done     []string   `json:"done,omitempty"`
	Complete bool       `json:"complete,omitempty"`
	// Took is the wall time the work's processes took, in seconds, by
	// class (agent, test, e2e): what is not the bot's own overhead.
	Took map[Class]float64 `json:"took,omitempty"`
}

// took adds a process's running time to the work's record.
func (c *cycle) took(class Class, d time.Duration) {
	if c.st.Work == nil {
		return
	}
	if c.st.Work.Took == nil {
		c.st.Work.Took = map[Class]float64{}
	}
	c.st.Work.Took[class] += d.Seconds()
}

// State is the workflow's record of a job, saved after every phase.
type State struct {
	Work *Work `json:"work,omitempty"`

	// Model and paths (repository-relative).
	ModelType   string   `json:"model_type,omitempty"`
	ConfigClass string   `json:"config_class,omitempty"`
	ModelFile   string   `json:"model_file,omitempty"`
	TestFile    string   `json:"test_file,omitempty"`
	Module      string   `json:"module,omitempty"`
	Classes     []string `json:"classes,omitempty"`
	WorldSize   int      `json:"world_size,omitempty"`
	ConfigName  string   `json:"config_name,omitempty"`

	Gather   Gathered       `json:"gather"`
	Survey   string         `json:"survey,omitempty"`
	Covered  bool           `json:"covered,omitempty"`
	Checks   []string       `json:"checks,omitempty"`
	Pytest   PytestRun      `json:"pytest"`
	Review   ReviewRun      `json:"review"`
	Registry []string       `json:"registry,omitempty"`
	E2E      E2ERun         `json:"e2e"`
	Docs     []string       `json:"docs,omitempty"`
	Files    []report.File  `json:"files,omitempty"`
	Agent    []AgentRun     `json:"agent,omitempty"`
	Replies  map[string]int `json:"replies,omitempty"`
}

// Gathered is what Phase 0 found.
type Gathered struct {
	Fit          string   `json:"fit,omitempty"`
	Plan         string   `json:"plan,omitempty"`
	Snapshot     string   `json:"snapshot,omitempty"`
	CodeFiles    []string `json:"code_files,omitempty"`
	Via          string   `json:"via,omitempty"`
	Transformers string   `json:"transformers,omitempty"`
}

// PytestRun is the last unit-test run.
type PytestRun struct {
	Command string `json:"command,omitempty"`
	Output  string `json:"output,omitempty"`
	Summary string `json:"summary,omitempty"`
	Commit  string `json:"commit,omitempty"`
	Passed  bool   `json:"passed,omitempty"`
	Runs    int    `json:"runs,omitempty"`
	// Tests are the JUnit report's cases.
	Tests []report.TestRow `json:"tests,omitempty"`
}

// ReviewRun is the reviewer's last verdict.
type ReviewRun struct {
	Verdict string `json:"verdict,omitempty"`
	Passed  bool   `json:"passed,omitempty"`
	Rounds  int    `json:"rounds,omitempty"`
}

// E2ERun is the last end-to-end run.
type E2ERun struct {
	Command    string     `json:"command,omitempty"`
	GPUs       string     `json:"gpus,omitempty"`
	ConfigYAML string     `json:"config_yaml,omitempty"`
	Reason     string     `json:"reason,omitempty"`
	OK         bool       `json:"ok,omitempty"`
	Pairs      []e2e.Pair `json:"pairs,omitempty"`
	Log        string     `json:"log,omitempty"`
	Runs       int        `json:"runs,omitempty"`
	Commit     string     `json:"commit,omitempty"`
}

// AgentRun is one agent process: its prompt and what it answered.
type AgentRun struct {
	Step     string  `json:"step"`
	Session  string  `json:"session,omitempty"`
	Resumed  bool    `json:"resumed,omitempty"`
	Turns    int     `json:"turns,omitempty"`
	CostUSD  float64 `json:"cost_usd,omitempty"`
	Duration string  `json:"duration,omitempty"`
	Prompt   string  `json:"prompt"`
	Result   string  `json:"result,omitempty"`
	Error    string  `json:"error,omitempty"`
	// Transcript names the saved stream-json.
	Transcript string `json:"transcript,omitempty"`
}

// cycle is one Run: the host, the options and the state.
type cycle struct {
	w   *Workflow
	h   Host
	job Job
	st  *State
}

// Run carries out one cycle: the onboarding, an update for a feedback batch,
// or the continuation of either after a retry or /onboard proceed. It
// returns nil when the cycle's work is done, a *WaitError when it must wait
// for a maintainer, or an error saying why it failed.
func (w *Workflow) Run(ctx context.Context, h Host) error {
	c := &cycle{w: w, h: h, job: h.Job()}
	if err := c.load(ctx); err != nil {
		return err
	}
	if err := c.checkBudget(); err != nil {
		return err
	}
	work := c.st.Work
	switch {
	case c.job.Kind == KindFeedback:
		if work == nil || work.Cycle != c.job.Cycle {
			work = &Work{Kind: KindFeedback, Cycle: c.job.Cycle, Feedback: c.job.Feedback}
		}
	case work != nil && !work.Complete:
		// A retry, or a cycle after a wait: go on with the same work.
	default:
		work = &Work{Kind: KindOnboard, Cycle: c.job.Cycle}
	}
	c.st.Work = work
	var phases []phase
	if work.Kind == KindFeedback {
		phases = c.updatePhases()
	} else {
		phases = c.onboardPhases()
	}
	for _, p := range phases {
		if err := c.run(ctx, p); err != nil {
			return err
		}
	}
	work.Complete = true
	return c.save(ctx)
}

type phase struct {
	name string
	fn   func(ctx context.Context) error
}

// run runs one phase through the host; a phase the work already did is
// recorded for this cycle without running again.
func (c *cycle) run(ctx context.Context, p phase) error {
	done := slices.Contains(c.st.Work.Done, p.name)
	return c.h.Phase(ctx, p.name, func(ctx context.Context) error {
		if done {
			return nil
		}
		if err := p.fn(ctx); err != nil {
			return err
		}
		c.st.Work.Done = append(c.st.Work.Done, p.name)
		return c.save(ctx)
	})
}

func (c *cycle) load(ctx context.Context) error {
	c.st = &State{}
	b, err := c.h.LoadState(ctx)
	if err != nil {
		return fmt.Errorf("load workflow state: %w", err)
	}
	if len(b) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, c.st); err != nil {
		return fmt.Errorf("load workflow state: %w", err)
	}
	return nil
}

func (c *cycle) save(ctx context.Context) error {
	b, err := json.Marshal(c.st)
	if err != nil {
		return fmt.Errorf("save workflow state: %w", err)
	}
	if err := c.h.SaveState(ctx, b); err != nil {
		return fmt.Errorf("save workflow state: %w", err)
	}
	return nil
}

// proceeded counts the maintainer's /onboard proceed for what.
func (c *cycle) proceeded(what string) int {
	n := 0
	for _, p := range c.job.Proceeded {
		if p == what {
			n++
		}
	}
	return n
}

// checkBudget stops the job when it has spent a bound of its budget; each
// /onboard proceed after such a stop grants the bounds once more.
func (c *cycle) checkBudget() error {
	b := c.w.opt.Budget
	k := 1 + c.proceeded("budget")
	u := c.job.Used
	var why string
	switch {
	case b.Cycles > 0 && c.job.Cycle > b.Cycles*k:
		why = fmt.Sprintf("this would be cycle %d; the budget allows %d", c.job.Cycle, b.Cycles*k)
	case b.Turns > 0 && u.Turns >= b.Turns*k:
		why = fmt.Sprintf("the agent has taken %d turns; the budget allows %d", u.Turns, b.Turns*k)
	case b.CostUSD > 0 && u.CostUSD >= b.CostUSD*float64(k):
		why = fmt.Sprintf("the agent has spent $%.2f; the budget allows $%.2f", u.CostUSD, b.CostUSD*float64(k))
	case b.Wall > 0 && u.Wall >= b.Wall*time.Duration(k):
		why = fmt.Sprintf("cycles have run %s; the budget allows %s", u.Wall.Round(time.Second), b.Wall*time.Duration(k))
	}
	if why == "" {
		return nil
	}
	return &WaitError{For: "budget", Reason: "budget spent: " + why + ". A maintainer can say `/onboard proceed` to grant as much again, or `/onboard cancel`."}
}
