package runners

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nvidia/adbot/internal/gpu"
	"github.com/nvidia/adbot/runners/sandbox"
	"github.com/nvidia/adbot/runners/workspace"
)

// Defaults for Config.
const (
	// DefaultRemote is the TensorRT-LLM repository a runner mirrors.
	DefaultRemote = "https://github.com/NVIDIA/TensorRT-LLM.git"
	// DefaultAgentCmd is the coding agent's program.
	DefaultAgentCmd = "claude"
	// DefaultGitHubAPIURL is github.com's REST API.
	DefaultGitHubAPIURL = "https://api.github.com/"
	// DefaultAdmitInterval is how often a runner looks for work it can take.
	DefaultAdmitInterval = 2 * time.Second
	// DefaultPace spaces the runner's content-creating GitHub requests: about
	// 80 a minute, GitHub's secondary limit.
	DefaultPace = 750 * time.Millisecond
	// DefaultMirrorRetry is how long a runner whose mirror could not be
	// cloned or fetched at start-up waits before it tries again; the wait
	// doubles after each failure, up to DefaultMirrorRetryMax.
	DefaultMirrorRetry = 15 * time.Second
	// DefaultMirrorRetryMax is the longest wait between two tries.
	DefaultMirrorRetryMax = 10 * time.Minute
)

// Config is a runner's configuration, from the environment (ConfigFromEnv)
// or filled in by an embedding program (adbot dev).
type Config struct {
	// Name identifies the runner in leases, presence and status comments
	// (ADBOT_RUNNER_NAME; the host name by default).
	Name string
	// NATSURL and NATSCreds reach the server's NATS (NATS_URL, NATS_CREDS).
	// Unused when Deps.Conn is given.
	NATSURL   string
	NATSCreds string
	// DataDir holds worktrees and cycle logs (ADBOT_DATA_DIR, ~/.adbot by
	// default); made absolute, so that a relative one is taken from the
	// working directory at start-up.
	DataDir string
	// RepoDir is the bare mirror of Remote (ADBOT_REPO_DIR, <DataDir>/trtllm.git
	// by default; made absolute). The worktrees (<DataDir>/worktrees) must
	// not lie inside it.
	RepoDir string
	// Remote is the TensorRT-LLM repository to mirror and push job branches to
	// (ADBOT_TRTLLM_REMOTE, DefaultRemote): a URL, or the path or file:// URL
	// of a local bare repository (a relative path is made absolute).
	Remote string
	// AgentCmd is the coding agent's program (ADBOT_AGENT_CMD, DefaultAgentCmd).
	AgentCmd string
	// GPUs restricts the GPUs used (ADBOT_GPUS: auto, none, indices "0,2,3",
	// or mocked ones, "mock:8xH100-80GB").
	GPUs gpu.Selection
	// DiskFloor refuses new work when the data dir's file system has less free
	// (ADBOT_DISK_FLOOR_GB; 50 GiB by default; 0 in the variable disables it).
	DiskFloor int64
	// GitHubAPIURL is the REST API base (GITHUB_V3_API_URL, DefaultGitHubAPIURL).
	GitHubAPIURL string
	// PassEnv names variables a cycle's processes inherit besides the minimal
	// set (ADBOT_PASS_ENV, comma-separated; e.g. HF_HOME,HF_TOKEN).
	PassEnv []string
	// AdmitInterval is how often the runner looks for work (DefaultAdmitInterval).
	AdmitInterval time.Duration
	// Pace spaces content-creating GitHub requests (DefaultPace).
	Pace time.Duration
	// MirrorRetry is the first wait after the mirror could not be cloned or
	// fetched at start-up (DefaultMirrorRetry); it doubles up to
	// MirrorRetryMax (DefaultMirrorRetryMax).
	MirrorRetry, MirrorRetryMax time.Duration
	// Sandbox confines the agent, pytest and the end-to-end run (ADBOT_SANDBOX:
	// bwrap, the default, or off, for development only).
	Sandbox sandbox.Mode
	// AgentEgress are the hosts the agent reaches through its egress proxy:
	// sandbox.DefaultEgress plus ADBOT_AGENT_EGRESS (comma-separated host,
	// host:port or *.domain; port 443 when none is given).
	AgentEgress []sandbox.Rule
	// AgentAllowedTools and AgentDisallowedTools are the agent's
	// --allowedTools and --disallowedTools (ADBOT_AGENT_ALLOWED_TOOLS,
	// ADBOT_AGENT_DISALLOWED_TOOLS, comma-separated; unset or empty:
	// sandbox.DefaultAllowedTools and sandbox.DefaultDisallowedTools).
	AgentAllowedTools    []string
	AgentDisallowedTools []string
}

// ConfigFromEnv reads the runner's configuration from the environment.
func ConfigFromEnv() (Config, error) {
	c := Config{
		Name:         os.Getenv("ADBOT_RUNNER_NAME"),
		NATSURL:      os.Getenv("NATS_URL"),
		NATSCreds:    os.Getenv("NATS_CREDS"),
		DataDir:      os.Getenv("ADBOT_DATA_DIR"),
		RepoDir:      os.Getenv("ADBOT_REPO_DIR"),
		Remote:       os.Getenv("ADBOT_TRTLLM_REMOTE"),
		AgentCmd:     os.Getenv("ADBOT_AGENT_CMD"),
		GitHubAPIURL: os.Getenv("GITHUB_V3_API_URL"),
	}
	var err error
	if c.GPUs, err = gpu.SelectionFromEnv(); err != nil {
		return Config{}, err
	}
	if v := os.Getenv("ADBOT_DISK_FLOOR_GB"); v != "" {
		gb, err := strconv.ParseFloat(v, 64)
		if err != nil || gb < 0 {
			return Config{}, fmt.Errorf("ADBOT_DISK_FLOOR_GB=%q: want a number of GiB, 0 to disable", v)
		}
		c.DiskFloor = int64(gb * (1 << 30))
		if c.DiskFloor == 0 {
			c.DiskFloor = -1
		}
	}
	if v := os.Getenv("ADBOT_PASS_ENV"); v != "" {
		for k := range strings.SplitSeq(v, ",") {
			if k = strings.TrimSpace(k); k != "" {
				c.PassEnv = append(c.PassEnv, k)
			}
		}
	}
	if c.Sandbox, err = sandbox.ParseMode(os.Getenv("ADBOT_SANDBOX")); err != nil {
		return Config{}, fmt.Errorf("ADBOT_SANDBOX: %w", err)
	}
	if c.AgentEgress, err = sandbox.ParseRules(append(slices.Clone(sandbox.DefaultEgress), os.Getenv("ADBOT_AGENT_EGRESS"))...); err != nil {
		return Config{}, fmt.Errorf("ADBOT_AGENT_EGRESS: %w", err)
	}
	if c.AgentAllowedTools, err = sandbox.ParseToolList(os.Getenv("ADBOT_AGENT_ALLOWED_TOOLS")); err != nil {
		return Config{}, fmt.Errorf("ADBOT_AGENT_ALLOWED_TOOLS: %w", err)
	}
	if c.AgentDisallowedTools, err = sandbox.ParseToolList(os.Getenv("ADBOT_AGENT_DISALLOWED_TOOLS")); err != nil {
		return Config{}, fmt.Errorf("ADBOT_AGENT_DISALLOWED_TOOLS: %w", err)
	}
	return c, nil
}

// withDefaults fills in what was left empty.
func (c Config) withDefaults() (Config, error) {
	if c.Name == "" {
		h, err := os.Hostname()
		if err != nil {
			return c, fmt.Errorf("runner name: ADBOT_RUNNER_NAME unset and no host name: %w", err)
		}
		c.Name = h
	}
	if strings.ContainsAny(c.Name, " \t\r\n*>") {
		return c, fmt.Errorf("runner name %q: no spaces or NATS wildcards", c.Name)
	}
	if c.DataDir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return c, fmt.Errorf("data dir: ADBOT_DATA_DIR unset and no home: %w", err)
		}
		c.DataDir = filepath.Join(home, ".adbot")
	}
	var err error
	if c.DataDir, err = filepath.Abs(c.DataDir); err != nil {
		return c, fmt.Errorf("data dir %s: %w", c.DataDir, err)
	}
	if c.RepoDir == "" {
		c.RepoDir = filepath.Join(c.DataDir, "trtllm.git")
	}
	if c.RepoDir, err = filepath.Abs(c.RepoDir); err != nil {
		return c, fmt.Errorf("mirror dir %s: %w", c.RepoDir, err)
	}
	if err := workspace.CheckLayout(c.RepoDir, c.workRoot()); err != nil {
		return c, fmt.Errorf("runner config: %w", err)
	}
	if c.Remote == "" {
		c.Remote = DefaultRemote
	}
	if c.Remote, err = workspace.NormalizeRemote(c.Remote); err != nil {
		return c, fmt.Errorf("ADBOT_TRTLLM_REMOTE: %w", err)
	}
	if c.AgentCmd == "" {
		c.AgentCmd = DefaultAgentCmd
	}
	if c.GitHubAPIURL == "" {
		c.GitHubAPIURL = DefaultGitHubAPIURL
	}
	if !strings.HasSuffix(c.GitHubAPIURL, "/") {
		c.GitHubAPIURL += "/"
	}
	if c.DiskFloor == 0 {
		c.DiskFloor = workspace.DefaultDiskFloor
	}
	if c.AdmitInterval <= 0 {
		c.AdmitInterval = DefaultAdmitInterval
	}
	if c.Pace == 0 {
		c.Pace = DefaultPace
	}
	if c.MirrorRetry <= 0 {
		c.MirrorRetry = DefaultMirrorRetry
	}
	if c.MirrorRetryMax <= 0 {
		c.MirrorRetryMax = DefaultMirrorRetryMax
	}
	c.MirrorRetryMax = max(c.MirrorRetryMax, c.MirrorRetry)
	if c.Sandbox == "" {
		c.Sandbox = sandbox.ModeBwrap
	}
	if c.AgentEgress == nil {
		rules, err := sandbox.ParseRules(sandbox.DefaultEgress...)
		if err != nil {
			return c, fmt.Errorf("default egress: %w", err)
		}
		c.AgentEgress = rules
	}
	if len(c.AgentAllowedTools) == 0 {
		c.AgentAllowedTools = slices.Clone(sandbox.DefaultAllowedTools)
	}
	if len(c.AgentDisallowedTools) == 0 {
		c.AgentDisallowedTools = slices.Clone(sandbox.DefaultDisallowedTools)
	}
	return c, nil
}

// workRoot holds the worktree slots.
func (c Config) workRoot() string { return filepath.Join(c.DataDir, "worktrees") }
