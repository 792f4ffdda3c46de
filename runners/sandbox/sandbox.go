// Package sandbox confines a cycle's processes (the coding agent, pytest, the
// end-to-end run) with bubblewrap (bwrap): Linux namespaces, started from an
// argument vector built here from a Policy.
//
// Inside, the process sees the system read-only, its worktree and scratch
// directory writable, the read-only paths its class needs (HF cache, Python
// environment), a minimal /proc and /dev with exactly the device nodes of the
// GPUs leased to the cycle, and nothing else of the host: the runner's data
// dir, other worktrees, NATS credentials and the App key are not mounted, and
// paths listed in Spec.Hidden are masked where a bound folder would show them.
// It runs in its own user, PID, IPC, UTS and network namespaces with every
// capability dropped, and dies with the runner. The network namespace holds
// only loopback: pytest and the end-to-end run have no network at all; the
// agent reaches the hosts of an allowlist through an egress Proxy the runner
// starts per cycle, whose unix socket is bound into the sandbox and served on
// 127.0.0.1 inside by a small forwarder (see forward.go).
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Class names what a policy confines.
type Class string

// The classes of sandboxed processes.
const (
	ClassAgent Class = "agent" // the coding agent: egress through the proxy only
	ClassTest  Class = "test"  // pytest: no network
	ClassE2E   Class = "e2e"   // the end-to-end run: no network, the HF cache read-only
)

// Mode says whether a runner builds sandboxes.
type Mode string

// The modes of ADBOT_SANDBOX.
const (
	// ModeBwrap confines every process whose Cmd carries a Policy (the default).
	ModeBwrap Mode = "bwrap"
	// ModeOff runs them unconfined: for development only, logged at warn.
	ModeOff Mode = "off"
)

// ParseMode reads ADBOT_SANDBOX's value; empty means ModeBwrap.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case "":
		return ModeBwrap, nil
	case ModeBwrap, ModeOff:
		return m, nil
	}
	return "", fmt.Errorf("sandbox mode %q: want bwrap or off", s)
}

// Paths inside the sandbox that the runner provides.
const (
	// ProxyAddr is where the agent's egress proxy answers inside its sandbox;
	// HTTPS_PROXY and HTTP_PROXY point there.
	ProxyAddr = "127.0.0.1:3128"
	// insideDir holds what the runner puts into the sandbox.
	insideDir = "/run/adbot"
	// insideSocket is where the egress proxy's socket is bound.
	insideSocket = insideDir + "/egress.sock"
	// insideForwarder is where the forwarder's executable is bound.
	insideForwarder = insideDir + "/forward"
)

// DefaultSystem are the host paths every sandbox sees read-only: programs,
// libraries, configuration (with DefaultHidden masked) and /sys, which CUDA,
// NVML and NCCL read for the GPUs' topology. Symbolic links among them (/bin
// on a merged-/usr system) are recreated as links.
var DefaultSystem = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt", "/sys"}

// DefaultHidden are host files masked in every sandbox although a system
// path would show them.
// /etc/adbot is where deploy/adbot-runner.service keeps the runner's
// environment file and NATS credentials.
var DefaultHidden = []string{"/etc/adbot", "/etc/shadow", "/etc/gshadow", "/etc/ssh", "/etc/sudoers", "/etc/sudoers.d"}

// NeverEnv are variables that never enter a sandbox, whatever a policy
// says: GitHub tokens (the runner pushes, not the processes it confines), the
// App's credentials and the runner's NATS connection.
var NeverEnv = []string{
	"GITHUB_TOKEN", "GH_TOKEN", "GH_ENTERPRISE_TOKEN", "GITHUB_ENTERPRISE_TOKEN", "ADBOT_GIT_TOKEN",
	"GITHUB_APP_PRIVATE_KEY", "GITHUB_APP_PRIVATE_KEY_FILE", "GITHUB_WEBHOOK_SECRET",
	"NATS_URL", "NATS_CREDS", "ADBOT_NATS_TOKEN",
}

// DefaultAPIKeyEnv is the variable holding the agent's model API key.
const DefaultAPIKeyEnv = "ANTHROPIC_API_KEY"

// SecretName matches names of variables that hold secrets (the runner's
// redaction uses the same rule): they are removed from a sandbox's
// environment unless the policy keeps them.
var SecretName = regexp.MustCompile(`(?i)token|secret|password|passwd|credential|private|api_?key|access_?key|(^|_)key$|(^|_)pat$`)

// roSecretFiles are files masked at the top of every read-only folder:
// HuggingFace keeps its login token in HF_HOME/token and HF_HOME/stored_tokens,
// beside the hub cache. (Bind HF_HUB_CACHE rather than HF_HOME where you can.)
var roSecretFiles = []string{"token", "stored_tokens", ".netrc", ".git-credentials"}

// gpuExtraNodes are the device nodes CUDA needs besides the GPUs' own.
var gpuExtraNodes = []string{"nvidiactl", "nvidia-uvm", "nvidia-uvm-tools"}

// Spec is what a cycle gives every policy.
type Spec struct {
	// Worktree is the job's checkout: writable, and the working directory.
	Worktree string
	// Scratch is the job's scratch directory: writable, HOME and TMPDIR.
	Scratch string
	// ReadOnly are bound read-only where they exist (HF cache, Python
	// environment, the agent's trusted configuration).
	ReadOnly []string
	// Writable are more writable folders (the agent's session directory).
	Writable []string
	// Hidden are masked where a bound folder would show them (the runner's
	// data dir, NATS credentials, the App key file), besides DefaultHidden.
	Hidden []string
	// GPUs are the NVML indices leased to the cycle; their /dev/nvidiaN nodes
	// are the only GPU nodes in the sandbox.
	GPUs []int
	// DevDir is where the host's device nodes are ("/dev" if empty).
	DevDir string
}

// Policy is how one process is confined. Build it with Agent, Test or E2E.
type Policy struct {
	Class Class
	Spec
	// System are bound read-only (DefaultSystem if nil).
	System []string
	// EgressSocket is the host path of the egress proxy's unix socket (agent
	// only); empty leaves the agent without any network.
	EgressSocket string
	// KeepSecrets names secret variables that stay in the environment (the
	// agent's API key). NeverEnv are removed regardless.
	KeepSecrets []string
	// Env are KEY=VALUE pairs set inside, after the runner's own.
	Env []string
	// Forwarder is the executable bound into the sandbox to serve the egress
	// proxy on ProxyAddr (os.Executable() if empty): any program built with
	// this package.
	Forwarder string
}

// Agent confines the coding agent: network only through the egress proxy
// listening on socket (Proxy.Socket; "" for none), and apiKeyEnv
// (DefaultAPIKeyEnv if empty) the only secret in its environment.
func Agent(s Spec, socket, apiKeyEnv string) *Policy {
	if apiKeyEnv == "" {
		apiKeyEnv = DefaultAPIKeyEnv
	}
	return &Policy{
		Class: ClassAgent, Spec: s, EgressSocket: socket, KeepSecrets: []string{apiKeyEnv},
		// The agent's telemetry and update checks would only be refused.
		Env: []string{"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1", "DISABLE_AUTOUPDATER=1"},
	}
}

// Test confines pytest: no network, no secret.
func Test(s Spec) *Policy {
	return &Policy{Class: ClassTest, Spec: s, Env: []string{"HF_HUB_OFFLINE=1"}}
}

// E2E confines the end-to-end run: no network (the model is in the HF cache
// already), no secret.
func E2E(s Spec) *Policy {
	return &Policy{Class: ClassE2E, Spec: s, Env: []string{"HF_HUB_OFFLINE=1", "TRANSFORMERS_OFFLINE=1"}}
}

// Command returns the argument vector that runs args under bwrap (the
// program's path) inside p, with dir (the worktree if empty) as the working
// directory. It checks the host paths it binds; it changes nothing.
func (p *Policy) Command(bwrap string, args []string, dir string) ([]string, error) {
	if len(args) == 0 {
		return nil, errors.New("sandbox: empty argument vector")
	}
	for _, c := range []struct{ what, path string }{{"worktree", p.Worktree}, {"scratch dir", p.Scratch}} {
		if err := isDir(c.path); err != nil {
			return nil, fmt.Errorf("sandbox %s: %s: %w", p.Class, c.what, err)
		}
	}
	if dir == "" {
		dir = p.Worktree
	}
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("sandbox %s: working directory %q is not absolute", p.Class, dir)
	}
	writable := append([]string{p.Worktree, p.Scratch}, p.Writable...)
	for _, w := range p.Writable {
		if err := isDir(w); err != nil {
			return nil, fmt.Errorf("sandbox %s: writable folder: %w", p.Class, err)
		}
	}
	for _, r := range p.ReadOnly {
		if !filepath.IsAbs(r) {
			return nil, fmt.Errorf("sandbox %s: read-only path %q is not absolute", p.Class, r)
		}
	}
	bound := append(slices.Clone(p.ReadOnly), writable...)
	hidden := append(slices.Clone(DefaultHidden), p.Hidden...)
	for _, h := range hidden {
		if !filepath.IsAbs(h) {
			return nil, fmt.Errorf("sandbox %s: hidden path %q is not absolute", p.Class, h)
		}
		for _, b := range bound {
			if filepath.Clean(b) == filepath.Clean(h) {
				return nil, fmt.Errorf("sandbox %s: %s is both bound and hidden", p.Class, h)
			}
		}
	}
	system := p.System
	if system == nil {
		system = DefaultSystem
	}

	a := []string{bwrap,
		"--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--unshare-net",
		"--cap-drop", "ALL", "--die-with-parent", "--new-session",
	}
	visible := slices.Clone(bound)
	for _, s := range system {
		fi, err := os.Lstat(s)
		switch {
		case err != nil:
			continue // not on this host
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(s)
			if err != nil {
				return nil, fmt.Errorf("sandbox %s: system link: %w", p.Class, err)
			}
			a = append(a, "--symlink", target, s)
		default:
			a = append(a, "--ro-bind", s, s)
			visible = append(visible, s)
		}
	}
	a = append(a, "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--dir", insideDir)
	// A hidden folder that holds a bound one (the data dir around the
	// worktree) is emptied first, so that only the bound one shows in it.
	var later, emptied []string
	for _, h := range hidden {
		if !visibleIn(h, visible) {
			continue // nothing shows it
		}
		isAncestor := slices.ContainsFunc(bound, func(b string) bool { return within(h, b) })
		if !isAncestor {
			later = append(later, h)
			continue
		}
		a = append(a, "--tmpfs", h)
		emptied = append(emptied, h)
	}
	for _, r := range p.ReadOnly {
		a = append(a, "--ro-bind-try", r, r)
	}
	for _, w := range writable {
		a = append(a, "--bind", w, w)
	}
	for _, h := range emptied { // read-only once the binds inside are made
		a = append(a, "--remount-ro", h)
	}
	for _, r := range p.ReadOnly {
		for _, f := range roSecretFiles {
			if f := filepath.Join(r, f); exists(f) {
				later = append(later, f)
			}
		}
	}
	for _, h := range later {
		fi, err := os.Stat(h)
		switch {
		case err != nil:
			continue
		case fi.IsDir():
			a = append(a, "--tmpfs", h, "--remount-ro", h)
		default:
			a = append(a, "--ro-bind", os.DevNull, h)
		}
	}
	nodes, err := p.gpuNodes()
	if err != nil {
		return nil, err
	}
	for _, n := range nodes {
		a = append(a, "--dev-bind", n, "/dev/"+filepath.Base(n))
	}
	var prefix []string
	if p.Class == ClassAgent && p.EgressSocket != "" {
		fwd := p.Forwarder
		if fwd == "" {
			if fwd, err = os.Executable(); err != nil {
				return nil, fmt.Errorf("sandbox %s: forwarder: %w", p.Class, err)
			}
		}
		if _, err := os.Stat(p.EgressSocket); err != nil {
			return nil, fmt.Errorf("sandbox %s: egress proxy socket: %w", p.Class, err)
		}
		a = append(a, "--bind", p.EgressSocket, insideSocket, "--ro-bind", fwd, insideForwarder)
		prefix = []string{insideForwarder, forwardArg, ProxyAddr, insideSocket, "--"}
	}
	// / and /tmp stay read-only: a write outside the bound folders fails
	// rather than landing in a throwaway tmpfs. TMPDIR is in the scratch dir.
	a = append(a, "--remount-ro", "/tmp", "--remount-ro", "/", "--chdir", dir, "--")
	a = append(a, prefix...)
	return append(a, args...), nil
}

// gpuNodes are the host device nodes of the leased GPUs, plus the control
// and UVM nodes CUDA needs when the host has them.
func (p *Policy) gpuNodes() ([]string, error) {
	if len(p.GPUs) == 0 {
		return nil, nil
	}
	dev := p.DevDir
	if dev == "" {
		dev = "/dev"
	}
	var out []string
	for _, i := range p.GPUs {
		if i < 0 {
			return nil, fmt.Errorf("sandbox %s: gpu index %d", p.Class, i)
		}
		n := filepath.Join(dev, "nvidia"+strconv.Itoa(i))
		if _, err := os.Stat(n); err != nil {
			return nil, fmt.Errorf("sandbox %s: gpu %d: %w", p.Class, i, err)
		}
		out = append(out, n)
	}
	for _, x := range gpuExtraNodes {
		if n := filepath.Join(dev, x); exists(n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// Environ returns the environment the sandboxed process gets from env, the
// one the runner built for the command: secrets removed but those the policy
// keeps, HOME and TMPDIR in the scratch dir, CUDA_VISIBLE_DEVICES numbering
// the leased GPUs as the sandbox shows them (0..n-1, in PCI order, since the
// other GPUs' nodes are absent), the agent's proxy, then p.Env.
func (p *Policy) Environ(env []string) []string {
	drop := []string{"HOME", "TMPDIR", "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"}
	out := p.StripSecrets(env)
	out = slices.DeleteFunc(out, func(kv string) bool { return slices.Contains(drop, envName(kv)) })
	tmp := filepath.Join(p.Scratch, "tmp")
	out = append(out, "HOME="+p.Scratch, "TMPDIR="+tmp)
	if len(p.GPUs) > 0 {
		ord := make([]string, len(p.GPUs))
		for i := range p.GPUs {
			ord[i] = strconv.Itoa(i)
		}
		out = append(out, "CUDA_DEVICE_ORDER=PCI_BUS_ID", "CUDA_VISIBLE_DEVICES="+strings.Join(ord, ","))
	} else {
		out = append(out, "CUDA_VISIBLE_DEVICES=")
	}
	if p.Class == ClassAgent && p.EgressSocket != "" {
		u := "http://" + ProxyAddr
		out = append(out, "HTTPS_PROXY="+u, "HTTP_PROXY="+u, "https_proxy="+u, "http_proxy="+u)
	}
	return append(out, p.Env...)
}

// StripSecrets returns env without secret variables (SecretName) other than
// those p keeps, and never with one of NeverEnv. ModeOff applies it too.
func (p *Policy) StripSecrets(env []string) []string {
	var out []string
	for _, kv := range env {
		k := envName(kv)
		if slices.Contains(NeverEnv, k) {
			continue
		}
		if SecretName.MatchString(k) && !slices.Contains(p.KeepSecrets, k) {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// Prepare makes the folders the sandbox expects in the scratch dir (TMPDIR).
func (p *Policy) Prepare() error {
	if err := isDir(filepath.Dir(p.Scratch)); err != nil {
		return fmt.Errorf("sandbox %s: scratch dir's parent: %w", p.Class, err)
	}
	if err := os.MkdirAll(filepath.Join(p.Scratch, "tmp"), 0o700); err != nil {
		return fmt.Errorf("sandbox %s: scratch: %w", p.Class, err)
	}
	return nil
}

// ErrUnavailable is wrapped by Probe's error when no sandbox can be built here.
var ErrUnavailable = errors.New("sandbox unavailable")

// Probe checks that bwrap (a path, or a name looked up in PATH) can build a
// sandbox on this host, and says what is missing when it cannot.
func Probe(ctx context.Context, bwrap string) error {
	path, err := exec.LookPath(bwrap)
	if err != nil {
		return fmt.Errorf("%w: %s not found (install bubblewrap: apt-get install bubblewrap; or set ADBOT_SANDBOX=off, for development only): %w", ErrUnavailable, bwrap, err)
	}
	cmd := exec.CommandContext(ctx, path, "--unshare-user", "--unshare-pid", "--unshare-net", "--cap-drop", "ALL",
		"--die-with-parent", "--ro-bind", "/", "/", "--proc", "/proc", "--", "true")
	cmd.Env = []string{}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s cannot create namespaces here (%s): it needs unprivileged user namespaces "+
			"(sysctl user.max_user_namespaces > 0, kernel.unprivileged_userns_clone=1 where it exists, and on Ubuntu "+
			"kernel.apparmor_restrict_unprivileged_userns=0 or an AppArmor profile for bwrap), or a container started with them allowed: %w",
			ErrUnavailable, path, strings.TrimSpace(string(out)), err)
	}
	return nil
}

func envName(kv string) string {
	k, _, _ := strings.Cut(kv, "=")
	return k
}

func isDir(p string) error {
	if p == "" || !filepath.IsAbs(p) {
		return fmt.Errorf("%q is not an absolute path", p)
	}
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a folder", p)
	}
	return nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// within reports whether p is dir or below it.
func within(dir, p string) bool {
	dir, p = filepath.Clean(dir), filepath.Clean(p)
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

// visibleIn reports whether p lies in one of the bound folders.
func visibleIn(p string, bound []string) bool {
	return slices.ContainsFunc(bound, func(b string) bool { return within(b, p) })
}
