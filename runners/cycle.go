package runners

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/internal/gpu"
	"github.com/nvidia/adbot/runners/proc"
	"github.com/nvidia/adbot/runners/sandbox"
	"github.com/nvidia/adbot/runners/workspace"
)

// Log keys the runner adds to its zerolog context.
const (
	LogKeyRunner = "runner"
	LogKeyJob    = bus.LogKeyJob
	LogKeyCycle  = "cycle"
	LogKeyGPU    = "gpu"
	LogKeyPhase  = "phase"
)

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
	// Remote is the repository the branch is pushed to.
	Remote string

	res    *bus.Resources
	exec   *proc.Runner
	redact *proc.Redactor
	tokens *tokenSource

	// upstream is the ref of upstream's default branch in the worktree,
	// devices the leased GPUs as NVML read them when the cycle started, and
	// scratch the cycle's private directory.
	upstream string
	devices  []gpu.Device
	scratch  string
	// box is what the cycle's sandboxes see, proxy the agent's egress proxy
	// (nil with ADBOT_SANDBOX=off) and agentHome the agent's configuration
	// and sessions for the job (CLAUDE_CONFIG_DIR), kept across cycles.
	box       sandbox.Spec
	proxy     *sandbox.Proxy
	agentHome string

	mu  sync.Mutex
	job bus.Job
	// pushed is the last commit this cycle pushed to the branch.
	pushed string
}

// Job returns a copy of the job record as last read or written by this cycle.
func (c *Cycle) Job() bus.Job {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.job
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
	// The job says which phase runs: the server's status writer shows it.
	if _, err := c.UpdateJob(ctx, func(j *bus.Job) error {
		if j.Running == name {
			return bus.ErrUnchanged
		}
		j.Running = name
		return nil
	}); err != nil {
		return fmt.Errorf("phase %s: record its start: %w", name, err)
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
		j.Phase, j.Running = name, ""
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
