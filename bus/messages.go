package bus

import "time"

// CycleKind says why a cycle exists.
type CycleKind string

// The kinds of cycle.
const (
	// KindOnboard is a job's first cycle: the whole onboarding workflow.
	KindOnboard CycleKind = "onboard"
	// KindFeedback is an update cycle for one batch of review feedback.
	KindFeedback CycleKind = "feedback"
	// KindRetry runs the last cycle again from its last recorded phase.
	KindRetry CycleKind = "retry"
)

// Cycle is one unit of work on the CycleStream: a job's initial onboarding, one
// feedback batch, or a retry. It is published with Nats-Msg-Id set to MsgID.
type Cycle struct {
	// JobKey identifies the job (JobKey(owner, repo, issue)).
	JobKey string `json:"job"`
	// Number counts the job's cycles from 1.
	Number int `json:"cycle"`
	// Kind says why the cycle exists.
	Kind CycleKind `json:"kind"`
	// Owner, Repo and Issue locate the job's issue on GitHub.
	Owner string `json:"owner"`
	Repo  string `json:"repo"`
	Issue int    `json:"issue"`
	// InstallationID is the GitHub App installation that reported the event.
	InstallationID int64 `json:"installation_id"`
	// ModelID is the validated HuggingFace repo id, and Revision its commit SHA.
	ModelID  string `json:"model_id"`
	Revision string `json:"revision,omitempty"`
	// GPUs is the number of GPUs the cycle needs (one of GPUSizes).
	GPUs int `json:"gpus"`
	// Feedback holds the review comments an update cycle answers, in order.
	Feedback []Feedback `json:"feedback,omitempty"`
	// DeliveryID is the GitHub delivery that caused the cycle, if one did directly.
	DeliveryID string `json:"delivery_id,omitempty"`
	// Enqueued is when the server published the cycle.
	Enqueued time.Time `json:"enqueued"`
}

// MsgID is the cycle's de-duplication id: <job>/<cycle>.
func (c Cycle) MsgID() string { return c.JobKey + "/" + itoa(c.Number) }

// Feedback is one reviewer remark that an update cycle must answer.
type Feedback struct {
	// Source is "issue_comment", "review" or "review_comment".
	Source string `json:"source"`
	// ID is the GitHub id of the comment or review.
	ID int64 `json:"id"`
	// Author is the reviewer's login.
	Author string `json:"author"`
	// Body is the remark verbatim.
	Body string `json:"body"`
	// Path and Line locate a review comment in the diff; empty otherwise.
	Path string `json:"path,omitempty"`
	Line int    `json:"line,omitempty"`
	// URL links to the remark on GitHub.
	URL string `json:"url,omitempty"`
	// DeliveryID is the webhook delivery that brought it.
	DeliveryID string `json:"delivery_id,omitempty"`
}

// JobStatus is where a job stands as a whole.
type JobStatus string

// The job statuses.
const (
	// StatusAwaitingApproval: the model runs remote code; a maintainer must say /onboard proceed.
	StatusAwaitingApproval JobStatus = "awaiting-approval"
	// StatusQueued: a cycle is on the stream, no runner has it yet.
	StatusQueued JobStatus = "queued"
	// StatusRunning: a runner holds the lease and works on a cycle.
	StatusRunning JobStatus = "running"
	// StatusWaitingReview: the PR is open and the bot waits for reviewers.
	StatusWaitingReview JobStatus = "waiting-review"
	// StatusFailed: the last cycle failed; /onboard retry starts it again.
	StatusFailed JobStatus = "failed"
	// StatusCancelled: a maintainer cancelled the job.
	StatusCancelled JobStatus = "cancelled"
	// StatusDone: approved, merged or closed. Nothing more happens.
	StatusDone JobStatus = "done"
)

// Terminal reports whether no further cycle may start for a job in status s.
func (s JobStatus) Terminal() bool { return s == StatusCancelled || s == StatusDone }

// Job is the state of one onboarding job, stored in JobBucket and changed only
// through UpdateJob.
type Job struct {
	Key            string `json:"key"`
	Owner          string `json:"owner"`
	Repo           string `json:"repo"`
	Issue          int    `json:"issue"`
	InstallationID int64  `json:"installation_id"`
	ModelID        string `json:"model_id"`
	Revision       string `json:"revision,omitempty"`
	Architecture   string `json:"architecture,omitempty"`
	Params         int64  `json:"params,omitempty"`
	// ParamsSource says where Params came from: "safetensors" (the Hub's
	// safetensors summary) or "config" (estimated from config.json); empty
	// when the size is unknown (or for a job written before it was recorded).
	ParamsSource string `json:"params_source,omitempty"`
	// ParamsNote says why the size is unknown, as the estimator put it.
	ParamsNote string    `json:"params_note,omitempty"`
	GPUs       int       `json:"gpus"`
	RemoteCode bool      `json:"remote_code,omitempty"`
	Requester  string    `json:"requester"`
	Status     JobStatus `json:"status"`
	// Phase is the last onboarding phase recorded as complete in the current cycle.
	Phase string `json:"phase,omitempty"`
	// Running is the phase the runner works on now ("" between phases).
	Running string `json:"running,omitempty"`
	// Cycle is the number of the newest cycle published for the job.
	Cycle int `json:"cycle"`
	// Outbox is a cycle recorded for publication but not yet confirmed published
	// (transactional outbox): whoever finds it set publishes it again, which the
	// stream's de-duplication by Cycle.MsgID makes safe.
	Outbox *Cycle `json:"outbox,omitempty"`
	// PendingFeedback waits for the running cycle to end, then goes out as one cycle.
	PendingFeedback []Feedback `json:"pending_feedback,omitempty"`
	PR              int        `json:"pr,omitempty"`
	Branch          string     `json:"branch,omitempty"`
	// HeadSHA is the PR head the bot last tested; only approvals of it count.
	HeadSHA string `json:"head_sha,omitempty"`
	// Runner and RunnerGPUs say who works on the job now, on which GPU indices.
	Runner       string `json:"runner,omitempty"`
	RunnerGPUs   []int  `json:"runner_gpus,omitempty"`
	AgentSession string `json:"agent_session,omitempty"`
	// AgentHost is the runner whose disk holds AgentSession: a session is
	// resumed only there.
	AgentHost string `json:"agent_host,omitempty"`
	// CycleKind is what the newest cycle's work is (an onboarding or an
	// update for feedback); a retry keeps the kind of the work it retries.
	CycleKind CycleKind `json:"cycle_kind,omitempty"`
	// BudgetUSD, BudgetTurns and BudgetWall are the agent spend, the agent's
	// turns and the cycles' running time over all cycles.
	BudgetUSD   float64       `json:"budget_usd,omitempty"`
	BudgetTurns int           `json:"budget_turns,omitempty"`
	BudgetWall  time.Duration `json:"budget_wall,omitempty"`
	// WaitFor names what a job awaiting approval waits for ("fit",
	// "budget"; empty for remote code before the first cycle), and
	// Proceeded the waits maintainers lifted with /onboard proceed.
	WaitFor   string   `json:"wait_for,omitempty"`
	Proceeded []string `json:"proceeded,omitempty"`
	// StatusCommentID is the job's one status comment, edited in place.
	StatusCommentID int64 `json:"status_comment_id,omitempty"`
	// Posted maps an idempotency key (<cycle>/<phase>/<what>) to what was made on
	// GitHub for it (a comment id, a PR number), so a resumed cycle posts nothing twice.
	Posted map[string]int64 `json:"posted,omitempty"`
	// Note is a short human explanation of the current status ("waiting for 4 free GPUs").
	Note      string    `json:"note,omitempty"`
	Created   time.Time `json:"created"`
	Updated   time.Time `json:"updated"`
	Started   time.Time `json:"started,omitzero"`
	Completed time.Time `json:"completed,omitzero"`
}

// Lease says which runner works on a job; it lives in LeaseBucket under the job's key.
type Lease struct {
	Runner  string    `json:"runner"`
	Cycle   int       `json:"cycle"`
	GPUs    []int     `json:"gpus"`
	Renewed time.Time `json:"renewed"`
	// ProofSHA256 is the hex SHA-256 of a secret only the holder knows (see
	// NewLeaseProof): anyone may read the lease, but only its holder can
	// answer the token broker with the secret.
	ProofSHA256 string `json:"proof_sha256,omitempty"`
}

// Presence is a runner's heartbeat, kept in RunnerBucket under the runner's name.
type Presence struct {
	Name     string    `json:"name"`
	Version  string    `json:"version"`
	GPUs     int       `json:"gpus"`
	FreeGPUs int       `json:"free_gpus"`
	Running  []string  `json:"running,omitempty"`
	Draining bool      `json:"draining,omitempty"` // takes no new work now
	Reason   string    `json:"reason,omitempty"`   // why Draining: stopping, low disk, mirror not ready
	Seen     time.Time `json:"seen"`
}

// TokenRequest asks the server for an installation token on TokenSubject.
type TokenRequest struct {
	// JobKey is the job whose lease the runner holds.
	JobKey string `json:"job"`
	// Runner must match the lease's holder.
	Runner string `json:"runner"`
	// Proof is the secret whose hash the lease holds (Lease.ProofSHA256).
	Proof string `json:"proof"`
	// Permissions narrows the token, e.g. {"contents": "write", "pull_requests": "write"}.
	Permissions map[string]string `json:"permissions"`
}

// TokenReply answers a TokenRequest: a token, or an error saying why not.
type TokenReply struct {
	Token   string    `json:"token,omitempty"`
	Expires time.Time `json:"expires,omitzero"`
	Error   string    `json:"error,omitempty"`
}

// CommandKind is what a GitHub event asks of adbot.
type CommandKind string

// The commands an event can turn into (docs/design.md, "Events and commands").
const (
	CmdOnboard  CommandKind = "onboard"
	CmdFeedback CommandKind = "feedback"
	CmdProceed  CommandKind = "proceed"
	CmdCancel   CommandKind = "cancel"
	CmdRetry    CommandKind = "retry"
	CmdStatus   CommandKind = "status"
	CmdHelp     CommandKind = "help"
	CmdEnd      CommandKind = "end"
)

// Command is one webhook delivery turned into what it asks for. The webhook
// handler publishes it on CommandSubject with Nats-Msg-Id = DeliveryID before
// answering GitHub, so nothing acknowledged is ever lost; the server's command
// worker then authorizes the actor and carries it out.
type Command struct {
	Kind       CommandKind `json:"kind"`
	DeliveryID string      `json:"delivery_id"`
	// Event is the GitHub event and action, e.g. "issue_comment.created".
	Event          string `json:"event"`
	InstallationID int64  `json:"installation_id"`
	Owner          string `json:"owner"`
	Repo           string `json:"repo"`
	// Issue is the issue or pull request number the event is about.
	Issue int  `json:"issue"`
	IsPR  bool `json:"is_pr,omitempty"`
	// Actor is the login of whoever caused the event, with GitHub's
	// author_association for it (a pre-filter only; permission is checked).
	Actor            string `json:"actor"`
	ActorAssociation string `json:"actor_association,omitempty"`
	// ModelID is the model named by an onboard command, NOT yet validated.
	ModelID string `json:"model_id,omitempty"`
	// CommentID is the issue comment that carried the command (0 when the issue
	// itself did); the 👀 reaction goes there.
	CommentID int64 `json:"comment_id,omitempty"`
	// ReviewCommentID is the pull request review comment (a line comment)
	// that carried the command or remark; the 👀 reaction goes there.
	ReviewCommentID int64 `json:"review_comment_id,omitempty"`
	// Feedback holds review remarks for CmdFeedback, in order.
	Feedback []Feedback `json:"feedback,omitempty"`
	// CommitSHA is the head an approval was given on.
	CommitSHA string `json:"commit_sha,omitempty"`
	// Reason says, for CmdEnd, why: "approved", "merged", "closed", "comment".
	Reason   string    `json:"reason,omitempty"`
	Received time.Time `json:"received"`
}

// Invalid says why c is no command a webhook handler makes ("" when it is
// one): an unknown kind, a repository or delivery id that is no GitHub
// name or GUID, an issue number that is not positive, or no actor for a
// command that needs one. The command worker terminates such a message
// instead of carrying it out.
func (c Command) Invalid() string {
	switch c.Kind {
	case CmdOnboard, CmdFeedback, CmdProceed, CmdCancel, CmdRetry, CmdStatus, CmdHelp, CmdEnd:
	default:
		return "unknown kind"
	}
	switch {
	case !TokenOK(c.Owner, false) || !TokenOK(c.Repo, true):
		return "repository owner or name is no GitHub name"
	case c.Issue <= 0:
		return "issue number is not positive"
	case c.DeliveryID != "" && !TokenOK(c.DeliveryID, false):
		return "delivery id is no GUID"
	case c.Actor == "" && !(c.Kind == CmdEnd && (c.Reason == "merged" || c.Reason == "closed")):
		return "no actor"
	case c.InstallationID < 0:
		return "installation id is negative"
	}
	return ""
}
