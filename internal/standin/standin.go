// Package standin holds the stand-ins that let the onboarding workflow run
// where neither the coding agent nor TensorRT-LLM can: a Claude Code
// stand-in (the executable script "claude", speaking the headless
// stream-json interface), a build_and_run_ad.py stand-in (AutoDeploy's log
// lines and results JSON, canned answers), and a demo TensorRT-LLM remote: a
// bare git repository with TensorRT-LLM's layout for the files the workflow
// touches. Tests and `adbot dev --demo` use them; nothing here runs a model.
package standin

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Names of the stand-in scripts, and where the end-to-end one sits in a
// TensorRT-LLM checkout.
const (
	AgentName = "claude"
	E2EName   = "build_and_run_ad.py"
	E2EPath   = "examples/auto_deploy/" + E2EName
)

// The demo remote's only commit is made by this author, on this branch.
const (
	Author      = "TensorRT-LLM demo"
	AuthorEmail = "trtllm-demo@adbot.invalid"
	Branch      = "main"
)

// Folder names BuildRemote makes under its dir.
const (
	WorkTreeName = "trtllm"
	BareName     = "trtllm.git"
)

var (
	//go:embed claude build_and_run_ad.py
	scripts embed.FS
	// skeleton is the demo checkout's content when no fixtures are at hand
	// (dot-claude becomes .claude).
	//go:embed all:skeleton
	skeleton embed.FS
	// common goes into every demo checkout: the custom models' __init__.py,
	// and the unit-test tree with its helpers.
	//go:embed all:common
	common embed.FS
)

// fixtureParts are the paths copied from <fixtures>/trtllm, with where they go.
var fixtureParts = [][2]string{
	{"examples/auto_deploy/model_registry", "examples/auto_deploy/model_registry"},
	{"examples/auto_deploy/cookbooks", "examples/auto_deploy/cookbooks"},
	{"docs/source/models/supported-models.md", "docs/source/models/supported-models.md"},
	{"dot-claude", ".claude"},
}

// Script returns the embedded text of a stand-in script (AgentName or E2EName).
func Script(name string) ([]byte, error) {
	b, err := scripts.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("stand-in script %q: %w", name, err)
	}
	return b, nil
}

// Install writes the stand-in agent and end-to-end script into dir (made if
// needed), mode 0755, and returns their paths.
func Install(dir string) (agent, e2e string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("install stand-ins: %w", err)
	}
	var paths []string
	for _, name := range []string{AgentName, E2EName} {
		b, err := Script(name)
		if err != nil {
			return "", "", err
		}
		p := filepath.Join(dir, name)
		if err := writeFile(p, b, 0o755); err != nil {
			return "", "", fmt.Errorf("install stand-ins: %w", err)
		}
		paths = append(paths, p)
	}
	return paths[0], paths[1], nil
}

// BuildRemote makes a work tree with TensorRT-LLM's layout under dir
// (dir/trtllm) and a bare clone of it (dir/trtllm.git), whose path it
// returns. With fixturesRoot set, the registry, its configs, the support
// matrix, the cookbooks and the .claude folder are copied from
// <fixturesRoot>/trtllm; otherwise they come from the embedded skeleton.
// Either way the checkout gets the stand-in build_and_run_ad.py, the custom
// models' __init__.py and the unit-test tree. It makes one commit on main by
// Author. It refuses to write over an existing work tree or bare repository,
// and removes both when it fails.
func BuildRemote(ctx context.Context, dir, fixturesRoot string) (remote string, err error) {
	work := filepath.Join(dir, WorkTreeName)
	bare := filepath.Join(dir, BareName)
	for _, p := range []string{work, bare} {
		if _, err := os.Lstat(p); err == nil {
			return "", fmt.Errorf("build demo remote: %s already exists", p)
		}
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return "", fmt.Errorf("build demo remote: %w", err)
	}
	// Both folders are new: a failed build leaves neither behind.
	defer func() {
		if err != nil {
			os.RemoveAll(work)
			os.RemoveAll(bare)
		}
	}()
	if fixturesRoot != "" {
		src := filepath.Join(fixturesRoot, "trtllm")
		for _, part := range fixtureParts {
			if err := copyTree(filepath.Join(src, filepath.FromSlash(part[0])), filepath.Join(work, filepath.FromSlash(part[1]))); err != nil {
				return "", fmt.Errorf("build demo remote from fixtures %s: %w", src, err)
			}
		}
	} else if err := writeEmbedded(skeleton, "skeleton", work); err != nil {
		return "", fmt.Errorf("build demo remote: %w", err)
	}
	if err := writeEmbedded(common, "common", work); err != nil {
		return "", fmt.Errorf("build demo remote: %w", err)
	}
	e2e, err := Script(E2EName)
	if err != nil {
		return "", err
	}
	if err := writeFile(filepath.Join(work, filepath.FromSlash(E2EPath)), e2e, 0o755); err != nil {
		return "", fmt.Errorf("build demo remote: %w", err)
	}
	steps := [][]string{
		{"init", "--quiet", "--initial-branch=" + Branch, work},
		{"-C", work, "add", "-A"},
		{"-C", work, "-c", "commit.gpgsign=false", "commit", "--quiet", "--no-verify", "-m", "TensorRT-LLM demo checkout for adbot"},
		{"clone", "--quiet", "--bare", work, bare},
	}
	for _, args := range steps {
		if err := git(ctx, dir, args...); err != nil {
			return "", fmt.Errorf("build demo remote: %w", err)
		}
	}
	return bare, nil
}

// git runs git in dir as Author.
func git(ctx context.Context, dir string, args ...string) error {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME="+Author, "GIT_AUTHOR_EMAIL="+AuthorEmail,
		"GIT_COMMITTER_NAME="+Author, "GIT_COMMITTER_EMAIL="+AuthorEmail,
		"GIT_TERMINAL_PROMPT=0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// writeEmbedded writes the tree under root of fsys into dst; a top-level
// "dot-claude" becomes ".claude".
func writeEmbedded(fsys embed.FS, root, dst string) error {
	return fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel := strings.TrimPrefix(p, root+"/")
		if strings.HasPrefix(rel, "dot-claude/") {
			rel = ".claude/" + strings.TrimPrefix(rel, "dot-claude/")
		}
		b, err := fsys.ReadFile(p)
		if err != nil {
			return fmt.Errorf("read embedded %s: %w", p, err)
		}
		return writeFile(filepath.Join(dst, filepath.FromSlash(rel)), b, 0o644)
	})
}

// copyTree copies a file, or a folder's regular files, from src to dst.
func copyTree(src, dst string) error {
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		return writeFile(dst, b, 0o644)
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil // folders are made as needed; links and the like are left out
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return writeFile(filepath.Join(dst, rel), b, 0o644)
	})
}

func writeFile(p string, b []byte, mode fs.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(p, b, mode); err != nil {
		return err
	}
	// WriteFile keeps an existing file's mode, and the umask may narrow a new one.
	if err := os.Chmod(p, mode); err != nil {
		return err
	}
	return nil
}

// ErrNoPython means python3 is not on PATH: the stand-ins cannot run.
var ErrNoPython = errors.New("python3 not found on PATH: the stand-in scripts need it")

// CheckPython reports whether python3, which the stand-ins need, is on PATH.
func CheckPython() error {
	if _, err := exec.LookPath("python3"); err != nil {
		return ErrNoPython
	}
	return nil
}
