// Package workflow is the onboarding workflow of TensorRT-LLM's
// ad-model-onboard skill, driven phase by phase: the creative phases through
// a coding agent run headless, everything else in exact code from the
// onboarding toolkit.
//
// The workflow knows nothing of NATS, leases or GitHub clients: it talks to
// the runner that holds the cycle through Host, declared here and
// implemented by the runner (runners.Cycle). main.go wires the two together.
package workflow

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nvidia/adbot/onboarding/comments"
)

// Host is what the runner holding a cycle offers the workflow. Every method
// that writes to GitHub is idempotent per key within the cycle: a cycle
// another runner resumes posts nothing twice.
type Host interface {
	// Job is the job and cycle as last recorded.
	Job() Job
	// Worktree is the job's checkout, on its branch.
	Worktree() Worktree
	// GPUs are the GPUs leased to the cycle, as NVML read them.
	GPUs() []GPU
	// Phase runs fn as the phase called name unless this cycle already
	// recorded it complete; on success its commits are pushed to the job's
	// branch and its completion recorded before Phase returns.
	Phase(ctx context.Context, name string, fn func(ctx context.Context) error) error
	// LoadState and SaveState keep the workflow's own record of the job
	// (what each phase found), durably, beside the job record: a runner
	// that takes the job over reads what the last one saved.
	LoadState(ctx context.Context) ([]byte, error)
	SaveState(ctx context.Context, data []byte) error
	// SaveLog keeps a file (an agent transcript, a pytest log) durably with
	// the job under name, at once rather than at the cycle's end.
	SaveLog(ctx context.Context, name, path string) error
	// Exec runs a process on the cycle's GPUs, in the worktree unless
	// cmd.Dir says otherwise, confined as cmd.Class says.
	Exec(ctx context.Context, cmd Cmd) (Result, error)
	// ScratchDir is the cycle's private scratch directory (outside the
	// worktree, removed with the cycle).
	ScratchDir() string
	// Push pushes HEAD to the job's branch and records it as the head the
	// bot tested; it returns the commit pushed.
	Push(ctx context.Context, force bool) (string, error)
	// Comment posts a log as one or more [AGENT] comments on the job's
	// issue (number 0) or pull request, split at GitHub's size limit.
	Comment(ctx context.Context, number int, key string, p comments.Post) ([]int64, error)
	// OpenPR opens the job's pull request from its branch, or finds the one
	// open, and records its number in the job.
	OpenPR(ctx context.Context, key string, pr PR) (int, error)
	// EditPR rewrites the pull request's title and body.
	EditPR(ctx context.Context, number int, pr PR) error
	// Reply answers a review remark in its thread (a review line comment
	// gets a reply in the thread, anything else a comment on the PR).
	Reply(ctx context.Context, key string, to Feedback, body string) (int64, error)
	// React marks a remark handled with a reaction GitHub supports ("+1",
	// "rocket", ...).
	React(ctx context.Context, to Feedback, content string) error
	// CheckRun creates or updates the check run for key on a commit.
	CheckRun(ctx context.Context, key string, cr CheckRun) error
	// Spend adds an agent run's use to the job's budget record and notes
	// its session.
	Spend(ctx context.Context, u Usage) error
}

// Job is what the workflow knows of its job and the cycle being run.
type Job struct {
	Key          string
	Owner, Repo  string
	Issue        int
	ModelID      string
	Revision     string
	Architecture string
	Params       int64
	// GPUs is the number of GPUs the job asked for.
	GPUs       int
	RemoteCode bool
	Requester  string
	// Cycle is this cycle's number and Kind why it exists.
	Cycle int
	Kind  CycleKind
	// Feedback holds the remarks an update cycle answers.
	Feedback []Feedback
	PR       int
	Branch   string
	HeadSHA  string
	// AgentSession is the agent session the job's work continues, and
	// AgentHost the runner it lives on (sessions are stored on the host).
	AgentSession string
	AgentHost    string
	// Runner is the runner working on the cycle.
	Runner string
	// Used is what the job has spent so far; Proceeded lists the waits a
	// maintainer has lifted with /onboard proceed ("fit", "budget", ...).
	Used      Usage
	Proceeded []string
}

// CycleKind says why a cycle exists.
type CycleKind string

// The kinds of cycle.
const (
	KindOnboard  CycleKind = "onboard"
	KindFeedback CycleKind = "feedback"
	KindRetry    CycleKind = "retry"
)

// Feedback is one reviewer remark, verbatim, from a user with write access
// (the server checked), as it read when it arrived.
type Feedback struct {
	Source string // "issue_comment", "review" or "review_comment"
	ID     int64
	Author string
	Body   string
	Path   string
	Line   int
	URL    string
}

// Worktree is the job's checkout.
type Worktree struct {
	Dir    string
	Branch string
	// Base is the upstream commit the branch started from; Upstream the
	// ref of upstream's default branch in the checkout ("origin/main").
	Base     string
	Upstream string
}

// GPU is one leased GPU.
type GPU struct {
	Index    int
	Name     string
	MemTotal uint64
	MemFree  uint64
}

// Class says how a process is confined.
type Class string

// The classes of process.
const (
	// ClassAgent is the coding agent: it writes the worktree and reaches
	// only the model API.
	ClassAgent Class = "agent"
	// ClassTest is pytest: no network.
	ClassTest Class = "test"
	// ClassE2E is the end-to-end run on the GPUs: no network.
	ClassE2E Class = "e2e"
	// ClassTool is git and other trusted tools of the runner's own.
	ClassTool Class = "tool"
)

// Cmd is one process to run.
type Cmd struct {
	// Name labels the step in logs ("pytest-2").
	Name string
	Args []string
	// Dir is the working directory (the worktree when empty).
	Dir     string
	Env     []string
	Timeout time.Duration
	Class   Class
}

// Result is how a process ended. Stdout and Stderr are files holding the
// complete, redacted output.
type Result struct {
	ExitCode       int
	TimedOut       bool
	Duration       time.Duration
	Stdout, Stderr string
}

// PR is a pull request's text.
type PR struct {
	Title, Body string
	// Base is the branch to merge into ("" for upstream's default).
	Base  string
	Draft bool
}

// CheckRun is a check run's content.
type CheckRun struct {
	Name, HeadSHA      string
	Status, Conclusion string
	Title, Summary     string
	Text               string
}

// Usage is what agent runs spent.
type Usage struct {
	Turns   int
	CostUSD float64
	// Wall is the time spent in cycles (the runner adds it).
	Wall time.Duration
	// Session and Host name the agent session to resume ("" leaves it).
	Session, Host string
}

// WaitError stops a cycle until a maintainer says /onboard proceed (or
// /onboard cancel). The runner records the job as awaiting approval with
// Reason as its note.
type WaitError struct {
	// For names what waits ("fit", "budget", "remote-code").
	For    string
	Reason string
}

func (e *WaitError) Error() string {
	return fmt.Sprintf("waiting for a maintainer (%s): %s", e.For, e.Reason)
}

// AsWait returns the WaitError in err's chain, or nil.
func AsWait(err error) *WaitError {
	var w *WaitError
	if errors.As(err, &w) {
		return w
	}
	return nil
}

// ErrToolMissing is wrapped by the error of a phase that needs a program
// the host lacks; the message says what to install.
var ErrToolMissing = errors.New("a required tool is missing on this runner")
