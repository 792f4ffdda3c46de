package workspace_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nvidia/adbot/internal/gittest"
	"github.com/nvidia/adbot/runners/workspace"
)

// newMirror makes a mirror of a new remote (main holds README.md, "hello\n"),
// its worktrees beside it, and ensures it.
func newMirror(t *testing.T) *workspace.Mirror {
	t.Helper()
	data := t.TempDir()
	m := &workspace.Mirror{Dir: filepath.Join(data, "mirror.git"), Remote: gittest.BareRepo(t, "hello\n"), WorkRoot: filepath.Join(data, "wt"), DiskFloor: -1}
	if err := m.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMirrorWorktrees(t *testing.T) {
	ctx := context.Background()
	m := newMirror(t)
	if err := m.Ensure(ctx); err != nil { // idempotent
		t.Fatal(err)
	}
	a, err := m.Add(ctx, "adbot/a-1")
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Add(ctx, "adbot/b-2")
	if err != nil {
		t.Fatal(err)
	}
	if a.Dir == b.Dir {
		t.Fatalf("two jobs share %s", a.Dir)
	}
	if a.Resumed {
		t.Errorf("new branch reported as resumed")
	}
	if got := gittest.Git(t, a.Dir, "rev-parse", "--abbrev-ref", "HEAD"); got != "adbot/a-1" {
		t.Errorf("branch = %q", got)
	}
	// Job a leaves a change and an untracked file, pushes its branch, ends.
	os.WriteFile(filepath.Join(a.Dir, "README.md"), []byte("changed\n"), 0o644)
	os.WriteFile(filepath.Join(a.Dir, "junk.txt"), []byte("x"), 0o644)
	gittest.Git(t, a.Dir, "commit", "--quiet", "-am", "work")
	pushed := gittest.Git(t, a.Dir, "rev-parse", "HEAD")
	gittest.Git(t, a.Dir, "push", "--quiet", "origin", "HEAD:refs/heads/adbot/a-1")
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}

	// Job c recycles a's slot and finds it clean, on main.
	c, err := m.Add(ctx, "adbot/c-3")
	if err != nil {
		t.Fatal(err)
	}
	if c.Dir != a.Dir {
		t.Errorf("slot not recycled: %s, want %s", c.Dir, a.Dir)
	}
	if b, _ := os.ReadFile(filepath.Join(c.Dir, "README.md")); string(b) != "hello\n" {
		t.Errorf("README = %q, want the default branch's", b)
	}
	if _, err := os.Stat(filepath.Join(c.Dir, "junk.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("untracked file survived: %v", err)
	}
	if err := c.Release(ctx); err != nil {
		t.Fatal(err)
	}

	// Job a resumes (another cycle): after a fetch, its worktree starts from the pushed branch.
	if err := m.Fetch(ctx); err != nil {
		t.Fatal(err)
	}
	a2, err := m.Add(ctx, "adbot/a-1")
	if err != nil {
		t.Fatal(err)
	}
	if !a2.Resumed || a2.Base != pushed {
		t.Errorf("resumed=%v base=%s, want resumed from %s", a2.Resumed, a2.Base, pushed)
	}
	if err := a2.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestEnsureLeavesNoHalfClone: a clone that cannot be moved into place (a
// non-empty folder without a repository is there) is removed, not left beside it.
func TestEnsureLeavesNoHalfClone(t *testing.T) {
	data := t.TempDir()
	dir := filepath.Join(data, "mirror.git")
	if err := os.MkdirAll(filepath.Join(dir, "junk"), 0o750); err != nil {
		t.Fatal(err)
	}
	m := &workspace.Mirror{Dir: dir, Remote: gittest.BareRepo(t, "hello\n"), WorkRoot: filepath.Join(data, "wt"), DiskFloor: -1}
	if err := m.Ensure(context.Background()); err == nil {
		t.Fatal("Ensure over a non-empty folder succeeded")
	}
	if _, err := os.Stat(dir + ".cloning"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("half-made clone left at %s.cloning (stat: %v)", dir, err)
	}
}

// TestNoHookRuns: a hook left in the mirror (by a cycle's process) does
// not run when the runner checks out the next job's worktree.
func TestNoHookRuns(t *testing.T) {
	ctx := context.Background()
	m := newMirror(t)
	ran := filepath.Join(t.TempDir(), "ran")
	hook := filepath.Join(m.Dir, "hooks", "post-checkout")
	if err := os.WriteFile(hook, []byte("#!/bin/sh\ntouch "+ran+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	w, err := m.Add(ctx, "adbot/x-1")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(ran); err == nil {
		t.Error("the mirror's post-checkout hook ran")
	}
}

// TestFetchRefusesForeignConfig: a redirect of origin left in the mirror's
// configuration (by a cycle's process) stops the fetch every later job
// would start from.
func TestFetchRefusesForeignConfig(t *testing.T) {
	ctx := context.Background()
	m := newMirror(t)
	gittest.Git(t, m.Dir, "config", "url.https://evil.example/.insteadOf", m.Remote)
	if err := m.Fetch(ctx); !errors.Is(err, workspace.ErrForeignConfig) || !strings.Contains(err.Error(), "insteadof") {
		t.Errorf("Fetch = %v, want ErrForeignConfig naming the insteadOf", err)
	}
}

func TestAddRefusesBelowDiskFloor(t *testing.T) {
	m := &workspace.Mirror{Dir: t.TempDir(), WorkRoot: t.TempDir(), DiskFloor: 1 << 62}
	_, err := m.Add(context.Background(), "adbot/x-1")
	if !errors.Is(err, workspace.ErrLowDisk) || !strings.Contains(err.Error(), "refusing new work") {
		t.Fatalf("err = %v, want ErrLowDisk saying so", err)
	}
}

func TestAddRejectsBadBranch(t *testing.T) {
	ctx := context.Background()
	m := newMirror(t)
	for _, b := range []string{"--upload-pack=x", "a..b", "with space"} {
		if _, err := m.Add(ctx, b); err == nil {
			t.Errorf("Add(%q) accepted", b)
		}
	}
}

func TestPrewarmedSlotIsRecycled(t *testing.T) {
	ctx := context.Background()
	m := newMirror(t)
	if err := m.Prewarm(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := m.Prewarm(ctx, 2); err != nil { // idempotent
		t.Fatal(err)
	}
	w, err := m.Add(ctx, "adbot/x-1")
	if err != nil {
		t.Fatal(err)
	}
	if w.Dir != filepath.Join(m.WorkRoot, "wt-0") {
		t.Errorf("first job got %s, want the prewarmed wt-0", w.Dir)
	}
	if got := gittest.Git(t, w.Dir, "rev-parse", "--abbrev-ref", "HEAD"); got != "adbot/x-1" {
		t.Errorf("branch = %q", got)
	}
	if err := w.Release(ctx); err != nil {
		t.Fatal(err)
	}
}
