package workspace_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nvidia/adbot/internal/gittest"
	"github.com/nvidia/adbot/runners/workspace"
)

// TestRelativeDataDir is adbot dev's default layout: a data dir given
// relative to the working directory (./.data), the mirror and the worktree
// root both under it, and a remote given as a relative path. git resolves a
// relative worktree path against the mirror, so before the fix the first
// worktree landed inside the mirror and the first job failed with "already
// exists". The worktrees must land where WorkRoot says and be recycled.
func TestRelativeDataDir(t *testing.T) {
	ctx := context.Background()
	remote := gittest.BareRepo(t, "hello\n")
	cwd := t.TempDir()
	if err := os.Symlink(remote, filepath.Join(cwd, "remote.git")); err != nil {
		t.Fatal(err)
	}
	t.Chdir(cwd)
	for _, tc := range []struct {
		name, dir, root, remote string
	}{
		{"relative dirs", ".data/runner/trtllm.git", ".data/runner/worktrees", remote},
		{"dotted relative dirs", "./.data/x/../b/trtllm.git", ".data/b/worktrees", remote},
		{"relative remote", ".data/c/trtllm.git", ".data/c/worktrees", "./remote.git"},
		{"file URL remote", ".data/d/trtllm.git", ".data/d/worktrees", "file://" + remote},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &workspace.Mirror{Dir: tc.dir, Remote: tc.remote, WorkRoot: tc.root, DiskFloor: -1}
			if err := m.Ensure(ctx); err != nil {
				t.Fatal(err)
			}
			if err := m.Prewarm(ctx, 1); err != nil {
				t.Fatal(err)
			}
			var dirs []string
			for _, branch := range []string{"adbot/a-1", "adbot/b-2"} {
				w, err := m.Add(ctx, branch)
				if err != nil {
					t.Fatalf("Add(%s): %v", branch, err)
				}
				dirs = append(dirs, w.Dir)
				if err := w.Release(ctx); err != nil {
					t.Fatal(err)
				}
			}
			slot := filepath.Join(cwd, filepath.Clean(tc.root), "wt-0")
			if diff := cmp.Diff(dirs, []string{slot, slot}); diff != "" {
				t.Errorf("worktree dirs (-got +want):\n%s", diff)
			}
			if _, err := os.Stat(filepath.Join(slot, "README.md")); err != nil {
				t.Errorf("no checkout in the worktree root: %v", err)
			}
			if _, err := os.Stat(filepath.Join(tc.dir, ".data")); err == nil {
				t.Errorf("a worktree landed inside the mirror")
			}
			if err := m.Fetch(ctx); err != nil { // origin as recorded matches the remote
				t.Errorf("Fetch: %v", err)
			}
		})
	}
}

// TestLayoutRefusesWorktreesInsideMirror: a worktree root inside the bare
// repository (or the same folder) is refused with a clear error before git
// runs.
func TestLayoutRefusesWorktreesInsideMirror(t *testing.T) {
	ctx := context.Background()
	remote := gittest.BareRepo(t, "hello\n")
	data := t.TempDir()
	for _, tc := range []struct {
		name      string
		dir, root string
	}{
		{"same folder", filepath.Join(data, "m"), filepath.Join(data, "m")},
		{"inside", filepath.Join(data, "m"), filepath.Join(data, "m", "worktrees")},
		{"inside after cleaning", filepath.Join(data, "m"), filepath.Join(data, "x", "..", "m", "wt")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &workspace.Mirror{Dir: tc.dir, Remote: remote, WorkRoot: tc.root, DiskFloor: -1}
			for op, err := range map[string]error{
				"Ensure":  m.Ensure(ctx),
				"Prewarm": m.Prewarm(ctx, 1),
				"Add":     func() error { _, err := m.Add(ctx, "adbot/a-1"); return err }(),
			} {
				if !errors.Is(err, workspace.ErrLayout) || !strings.Contains(err.Error(), "ADBOT_REPO_DIR") {
					t.Errorf("%s = %v, want ErrLayout naming ADBOT_REPO_DIR", op, err)
				}
			}
		})
	}
	// Side by side, and a name that merely starts like the mirror's, are fine.
	for _, root := range []string{filepath.Join(data, "wt"), filepath.Join(data, "m.git-worktrees")} {
		m := &workspace.Mirror{Dir: filepath.Join(data, "m.git"), Remote: remote, WorkRoot: root, DiskFloor: -1}
		if err := m.Ensure(ctx); err != nil {
			t.Errorf("Ensure with worktrees at %s: %v", root, err)
		}
	}
}

func TestEnsureCloneFailure(t *testing.T) {
	data := t.TempDir()
	for _, tc := range []struct{ name, remote string }{
		{"missing path", filepath.Join(data, "nowhere.git")},
		{"missing file URL", "file://" + filepath.Join(data, "nowhere.git")},
		{"not a repository", data},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &workspace.Mirror{Dir: filepath.Join(t.TempDir(), "m.git"), Remote: tc.remote, WorkRoot: filepath.Join(data, "wt"), DiskFloor: -1}
			err := m.Ensure(context.Background())
			if !errors.Is(err, workspace.ErrClone) {
				t.Fatalf("Ensure = %v, want ErrClone", err)
			}
			if _, err := os.Stat(m.Dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a failed clone left %s (stat: %v)", m.Dir, err)
			}
		})
	}
}

func TestNormalizeRemote(t *testing.T) {
	cwd := t.TempDir()
	t.Chdir(cwd)
	for _, tc := range []struct{ in, want string }{
		{"https://github.com/NVIDIA/TensorRT-LLM.git", "https://github.com/NVIDIA/TensorRT-LLM.git"},
		{"file:///srv/trtllm.git", "file:///srv/trtllm.git"},
		{"git@github.com:NVIDIA/TensorRT-LLM.git", "git@github.com:NVIDIA/TensorRT-LLM.git"},
		{"/srv/trtllm.git", "/srv/trtllm.git"},
		{"trtllm.git", filepath.Join(cwd, "trtllm.git")},
		{"./a/../trtllm.git", filepath.Join(cwd, "trtllm.git")},
		{"./odd:name.git", filepath.Join(cwd, "odd:name.git")},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := workspace.NormalizeRemote(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
		})
	}
	if _, err := workspace.NormalizeRemote(""); err == nil {
		t.Error("empty remote accepted")
	}
}

func FuzzNormalizeRemote(f *testing.F) {
	for _, s := range []string{"https://h/x.git", "file:///x", "git@h:x", "./x", "x:y/z", "a/b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := workspace.NormalizeRemote(s)
		if err != nil {
			return
		}
		if workspace.IsLocalRemote(s) != workspace.IsLocalRemote(got) {
			t.Errorf("NormalizeRemote(%q) = %q changes its kind", s, got)
		}
		if workspace.IsLocalRemote(s) && !filepath.IsAbs(got) {
			t.Errorf("NormalizeRemote(%q) = %q, not absolute", s, got)
		}
		if !workspace.IsLocalRemote(s) && got != s {
			t.Errorf("NormalizeRemote(%q) = %q, want it unchanged", s, got)
		}
	})
}

func TestDisplayRemote(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://x-access-token:" + randomPassword(t) + "@github.com/NVIDIA/TensorRT-LLM.git", "https://github.com/NVIDIA/TensorRT-LLM.git"},
		{"https://github.com/NVIDIA/TensorRT-LLM.git", "https://github.com/NVIDIA/TensorRT-LLM.git"},
		{"file:///srv/trtllm.git", "file:///srv/trtllm.git"},
		{"/srv/trtllm.git", "/srv/trtllm.git"},
		{"git@github.com:NVIDIA/TensorRT-LLM.git", "git@github.com:NVIDIA/TensorRT-LLM.git"},
	} {
		if got := workspace.DisplayRemote(tc.in); got != tc.want {
			t.Errorf("DisplayRemote(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// randomPassword is a credential made at run time for URLs that carry one.
func randomPassword(t *testing.T) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
