// Package workspace keeps one bare mirror of the TensorRT-LLM remote per host
// and gives each job its own git worktree on its own branch.
//
// The mirror is cloned once and fetched before each cycle. Worktrees live in
// numbered slots beside it; when a job's cycle ends its slot is cleaned
// (reset, untracked files removed, branch dropped) and kept, so the next job
// checks out only the files that differ instead of the whole tree. A slot is
// held with flock(2), so a crashed runner's slots are free again at once and
// two runners sharing a data directory never share one.
package workspace

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultDiskFloor is the free space below which a runner takes no new work.
const DefaultDiskFloor = 50 << 30

// ErrLowDisk is wrapped by Add's error when free disk is under the floor.
var ErrLowDisk = errors.New("free disk below the floor")

// ErrClone is wrapped by Ensure's error when the mirror could not be cloned
// from its remote (unreachable, not a repository, no permission).
var ErrClone = errors.New("clone failed")

// ErrLayout is wrapped by the error of a Mirror whose worktree root lies
// inside the bare repository: git would treat the worktrees as part of it.
var ErrLayout = errors.New("worktree root inside the mirror")

// Mirror is a bare mirror of one remote and the worktrees made from it.
type Mirror struct {
	// Dir holds the bare repository (ADBOT_REPO_DIR). Relative paths are
	// taken from the working directory when the Mirror is first used.
	Dir string
	// Remote is the URL or path the mirror fetches from (and pushes go to).
	Remote string
	// WorkRoot holds the worktree slots; it must not lie inside Dir.
	WorkRoot string
	// DiskFloor refuses new worktrees when WorkRoot's file system has less
	// free space (DefaultDiskFloor if zero; negative disables).
	DiskFloor int64
	// GitEnv is added to git's environment (e.g. a credential helper's variables).
	GitEnv []string

	mu sync.Mutex // serializes the mirror's own ref updates within a process

	once      sync.Once
	dir, root string // Dir and WorkRoot made absolute (layout)
	layoutErr error
}

// Worktree is one job's checkout.
type Worktree struct {
	Dir    string
	Branch string
	// Base is the commit the branch started from.
	Base string
	// Resumed says the branch already existed on the remote and the worktree
	// starts from it rather than from the default branch.
	Resumed bool

	m    *Mirror
	lock *os.File
}

// layout returns the mirror's directory and the worktree root as absolute
// paths. git resolves a relative worktree path against the directory it runs
// in (the mirror), not against ours: relative paths would put the worktrees
// inside the mirror. A worktree root inside the mirror is an error wrapping
// ErrLayout.
func (m *Mirror) layout() (dir, root string, err error) {
	m.once.Do(func() { m.dir, m.root, m.layoutErr = resolveLayout(m.Dir, m.WorkRoot) })
	return m.dir, m.root, m.layoutErr
}

// CheckLayout returns an error wrapping ErrLayout when the worktree root
// workRoot lies inside the mirror dir (or is it).
func CheckLayout(dir, workRoot string) error {
	_, _, err := resolveLayout(dir, workRoot)
	return err
}

func resolveLayout(mirror, workRoot string) (dir, root string, err error) {
	if mirror == "" || workRoot == "" {
		return "", "", fmt.Errorf("mirror dir %q, worktree root %q: both must be set", mirror, workRoot)
	}
	if dir, err = filepath.Abs(mirror); err != nil {
		return "", "", fmt.Errorf("mirror dir %s: %w", mirror, err)
	}
	if root, err = filepath.Abs(workRoot); err != nil {
		return "", "", fmt.Errorf("worktree root %s: %w", workRoot, err)
	}
	if rel, err := filepath.Rel(dir, root); err == nil && (rel == "." || !strings.HasPrefix(rel, "..")) {
		return "", "", fmt.Errorf("worktree root %s, mirror %s: %w; put them side by side (ADBOT_DATA_DIR, ADBOT_REPO_DIR)", root, dir, ErrLayout)
	}
	return dir, root, nil
}

// NormalizeRemote returns remote as git records it in a clone: a local path
// (neither a URL nor scp-like host:path) made absolute, anything else as is.
func NormalizeRemote(remote string) (string, error) {
	if remote == "" {
		return "", errors.New("remote: empty")
	}
	if !IsLocalRemote(remote) || filepath.IsAbs(remote) {
		return remote, nil
	}
	abs, err := filepath.Abs(remote)
	if err != nil {
		return "", fmt.Errorf("remote %s: %w", remote, err)
	}
	return abs, nil
}

// DisplayRemote is remote fit for a log or an error: a URL's user and
// password dropped.
func DisplayRemote(remote string) string {
	u, err := url.Parse(remote)
	if err != nil || u.User == nil {
		return remote
	}
	u.User = nil
	return u.String()
}

// IsLocalRemote reports whether git reads remote as a path on this host
// rather than a URL ("scheme://...") or an scp-like "host:path". A
// file:// URL is a URL.
func IsLocalRemote(remote string) bool {
	if strings.Contains(remote, "://") {
		return false
	}
	colon := strings.IndexByte(remote, ':')
	return colon < 0 || strings.Contains(remote[:colon], "/")
}

// Ensure clones the mirror when it does not exist yet and fetches it. A
// failed clone is an error wrapping ErrClone.
func (m *Mirror) Ensure(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir, _, err := m.layout()
	if err != nil {
		return err
	}
	remote, err := NormalizeRemote(m.Remote)
	if err != nil {
		return fmt.Errorf("mirror %s: %w", dir, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "HEAD")); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(dir), 0o750); err != nil {
			return fmt.Errorf("make mirror dir: %w", err)
		}
		tmp := dir + ".cloning"
		_ = os.RemoveAll(tmp)
		// A clone killed with its context, or one that cannot be moved into
		// place, is not left behind (it can be gigabytes).
		defer os.RemoveAll(tmp)
		if _, err := git(ctx, "", m.GitEnv, "clone", "--bare", "--quiet", remote, tmp); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("clone mirror of %s: %w", DisplayRemote(remote), err)
			}
			return fmt.Errorf("clone mirror of %s into %s: %w: %w", DisplayRemote(remote), dir, ErrClone, err)
		}
		if _, err := git(ctx, tmp, nil, "config", "remote.origin.fetch", "+refs/heads/*:refs/remotes/origin/*"); err != nil {
			return fmt.Errorf("configure mirror: %w", err)
		}
		if err := os.Rename(tmp, dir); err != nil {
			return fmt.Errorf("move mirror into place: %w", err)
		}
	} else if err != nil {
		return fmt.Errorf("stat mirror %s: %w", dir, err)
	}
	return m.fetchLocked(ctx)
}

// Fetch brings the mirror up to date with the remote.
func (m *Mirror) Fetch(ctx context.Context) error {
	if _, _, err := m.layout(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.fetchLocked(ctx)
}

func (m *Mirror) fetchLocked(ctx context.Context) error {
	unlock, err := flock(ctx, filepath.Join(m.dir, "adbot.lock"))
	if err != nil {
		return err
	}
	defer unlock()
	// Every job starts from what this fetch brings: a redirect of origin
	// left in the mirror by one job's processes must not feed the next ones.
	remote, err := NormalizeRemote(m.Remote)
	if err != nil {
		return fmt.Errorf("fetch mirror %s: %w", m.dir, err)
	}
	if err := CheckConfig(ctx, m.dir, m.GitEnv, remote); err != nil {
		return fmt.Errorf("fetch mirror: %w", err)
	}
	if _, err := git(ctx, m.dir, m.GitEnv, "fetch", "--quiet", "--prune", "origin"); err != nil {
		return fmt.Errorf("fetch mirror %s: %w", m.dir, err)
	}
	return nil
}

// DefaultBranch is the remote's default branch, as the clone recorded it.
func (m *Mirror) DefaultBranch(ctx context.Context) (string, error) {
	if _, _, err := m.layout(); err != nil {
		return "", err
	}
	out, err := git(ctx, m.dir, nil, "symbolic-ref", "--short", "HEAD")
	if err != nil {
		return "", fmt.Errorf("read default branch of %s: %w", m.dir, err)
	}
	return strings.TrimSpace(out), nil
}

// CheckDisk returns an error wrapping ErrLowDisk when the worktrees' file
// system has less free space than the floor.
func (m *Mirror) CheckDisk() error {
	floor := m.DiskFloor
	if floor == 0 {
		floor = DefaultDiskFloor
	}
	if floor < 0 {
		return nil
	}
	_, root, err := m.layout()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(root, 0o750); err != nil {
		return fmt.Errorf("make worktree root: %w", err)
	}
	free, err := FreeBytes(root)
	if err != nil {
		return err
	}
	if free < uint64(floor) {
		return fmt.Errorf("refusing new work: %.1f GiB free under %s, floor is %.1f GiB: %w",
			float64(free)/(1<<30), root, float64(floor)/(1<<30), ErrLowDisk)
	}
	return nil
}

// FreeBytes is the space available to unprivileged users on path's file system.
func FreeBytes(path string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", path, err)
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// Add gives a job a worktree on branch: it starts from the remote's branch of
// that name when there is one (a resumed or updated job), else from the
// default branch. Fetch first for a current start.
func (m *Mirror) Add(ctx context.Context, branch string) (*Worktree, error) {
	_, root, err := m.layout()
	if err != nil {
		return nil, err
	}
	if err := m.CheckDisk(); err != nil {
		return nil, err
	}
	if _, err := git(ctx, m.dir, nil, "check-ref-format", "--branch", branch); err != nil {
		return nil, fmt.Errorf("branch name %q: %w", branch, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	unlock, err := flock(ctx, filepath.Join(m.dir, "adbot.lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()

	w := &Worktree{Branch: branch, m: m}
	start := "refs/remotes/origin/" + branch
	if _, err := git(ctx, m.dir, nil, "rev-parse", "--verify", "--quiet", start+"^{commit}"); err == nil {
		w.Resumed = true
	} else {
		def, err := m.DefaultBranch(ctx)
		if err != nil {
			return nil, err
		}
		start = "refs/remotes/origin/" + def
	}
	base, err := git(ctx, m.dir, nil, "rev-parse", "--verify", start+"^{commit}")
	if err != nil {
		return nil, fmt.Errorf("resolve %s in mirror: %w", start, err)
	}
	w.Base = strings.TrimSpace(base)

	slot, lock, err := takeSlot(root)
	if err != nil {
		return nil, err
	}
	w.Dir, w.lock = slot, lock
	fail := func(err error) (*Worktree, error) {
		lock.Close()
		return nil, err
	}
	if isWorktree(slot) {
		// Recycle: only the files that differ are written.
		if _, err := git(ctx, slot, nil, "checkout", "--quiet", "--force", "--ignore-other-worktrees", "--no-track", "-B", branch, w.Base); err != nil {
			return fail(fmt.Errorf("check out %s in %s: %w", branch, slot, err))
		}
		if _, err := git(ctx, slot, nil, "clean", "-ffdxq"); err != nil {
			return fail(fmt.Errorf("clean %s: %w", slot, err))
		}
		return w, nil
	}
	_ = os.RemoveAll(slot)
	if _, err := git(ctx, m.dir, nil, "worktree", "prune"); err != nil {
		return fail(fmt.Errorf("prune worktrees: %w", err))
	}
	if _, err := git(ctx, m.dir, nil, "worktree", "add", "--quiet", "--force", "--no-track", "-B", branch, slot, w.Base); err != nil {
		return fail(fmt.Errorf("add worktree %s for %s: %w", slot, branch, err))
	}
	return w, nil
}

// Prewarm makes sure at least n worktree slots hold a checkout (detached at
// the default branch), so that the first jobs on a host also recycle a slot
// instead of checking out the whole tree. It skips slots in use.
func (m *Mirror) Prewarm(ctx context.Context, n int) error {
	_, root, err := m.layout()
	if err != nil {
		return err
	}
	if err := m.CheckDisk(); err != nil {
		return err
	}
	if err := os.MkdirAll(root, 0o750); err != nil {
		return fmt.Errorf("make worktree root: %w", err)
	}
	def, err := m.DefaultBranch(ctx)
	if err != nil {
		return err
	}
	for i := range n {
		dir := filepath.Join(root, "wt-"+strconv.Itoa(i))
		if isWorktree(dir) {
			continue
		}
		f, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o640)
		if err != nil {
			return fmt.Errorf("open slot lock: %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			continue
		}
		m.mu.Lock()
		_ = os.RemoveAll(dir)
		_, _ = git(ctx, m.dir, nil, "worktree", "prune")
		_, err = git(ctx, m.dir, nil, "worktree", "add", "--quiet", "--force", "--detach", dir, "refs/remotes/origin/"+def)
		m.mu.Unlock()
		f.Close()
		if err != nil {
			return fmt.Errorf("prewarm worktree %s: %w", dir, err)
		}
	}
	return nil
}

// takeSlot locks the first free slot directory under root (absolute),
// preferring one that already holds a worktree.
func takeSlot(root string) (string, *os.File, error) {
	if err := os.MkdirAll(root, 0o750); err != nil {
		return "", nil, fmt.Errorf("make worktree root: %w", err)
	}
	var fallback string
	var fallbackLock *os.File
	for i := 0; i < 1024; i++ {
		dir := filepath.Join(root, "wt-"+strconv.Itoa(i))
		f, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o640)
		if err != nil {
			return "", nil, fmt.Errorf("open slot lock: %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			continue // in use
		}
		if isWorktree(dir) {
			if fallbackLock != nil {
				fallbackLock.Close()
			}
			return dir, f, nil
		}
		if fallbackLock == nil {
			fallback, fallbackLock = dir, f
		} else {
			f.Close()
		}
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			break // slots are numbered densely: nothing recyclable beyond
		}
	}
	if fallbackLock == nil {
		return "", nil, errors.New("no free worktree slot")
	}
	return fallback, fallbackLock, nil
}

func isWorktree(dir string) bool {
	st, err := os.Stat(filepath.Join(dir, ".git"))
	return err == nil && !st.IsDir()
}

// Release cleans the worktree for the next job (every change and untracked
// file dropped, the branch deleted from the mirror) and frees its slot. The
// branch must have been pushed by then if its work is to survive.
func (w *Worktree) Release(ctx context.Context) error {
	if w.lock == nil {
		return nil
	}
	defer func() { w.lock.Close(); w.lock = nil }()
	var errs []error
	if _, err := git(ctx, w.Dir, nil, "checkout", "--quiet", "--force", "--detach"); err != nil {
		errs = append(errs, fmt.Errorf("detach %s: %w", w.Dir, err))
	}
	if _, err := git(ctx, w.Dir, nil, "clean", "-ffdxq"); err != nil {
		errs = append(errs, fmt.Errorf("clean %s: %w", w.Dir, err))
	}
	w.m.mu.Lock()
	_, err := git(ctx, w.m.dir, nil, "branch", "--quiet", "-D", w.Branch)
	w.m.mu.Unlock()
	if err != nil {
		errs = append(errs, fmt.Errorf("delete branch %s: %w", w.Branch, err))
	}
	if len(errs) > 0 {
		// A slot that could not be cleaned is removed instead.
		_ = os.RemoveAll(w.Dir)
	}
	return errors.Join(errs...)
}

// Remove deletes the worktree outright and frees its slot.
func (w *Worktree) Remove(ctx context.Context) error {
	if w.lock == nil {
		return nil
	}
	defer func() { w.lock.Close(); w.lock = nil }()
	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	if _, err := git(ctx, w.m.dir, nil, "worktree", "remove", "--force", w.Dir); err != nil {
		_ = os.RemoveAll(w.Dir)
		return fmt.Errorf("remove worktree %s: %w", w.Dir, err)
	}
	_, _ = git(ctx, w.m.dir, nil, "branch", "--quiet", "-D", w.Branch)
	return nil
}

// flock takes an exclusive lock on path, waiting (with the context) while
// another process holds it.
func flock(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// safeGit are settings every git the runner runs gets: a cycle's processes
// can write the mirror's hooks and configuration (the agent runs as the
// runner's user), and the runner's own checkouts and cleanups for later jobs
// must not run what they left there (a post-checkout hook, an fsmonitor
// program).
var safeGit = []string{"-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false"}

// git runs git with an argument vector and a minimal environment.
func git(ctx context.Context, dir string, env []string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", append(slices.Clip(safeGit), args...)...)
	cmd.Dir = dir
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"GIT_TERMINAL_PROMPT=0",
		"GIT_CONFIG_NOSYSTEM=1",
		"LC_ALL=C",
	}, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errb.String())
		if len(msg) > 2000 {
			msg = msg[:2000] + "…"
		}
		return out.String(), fmt.Errorf("git %s: %w: %s", args[0], err, msg)
	}
	return out.String(), nil
}

// Git runs git in dir with an argument vector and a minimal environment plus
// env, returning its standard output. Workflows use it for quick queries; long
// or logged steps go through proc.
func Git(ctx context.Context, dir string, env []string, args ...string) (string, error) {
	return git(ctx, dir, env, args...)
}
