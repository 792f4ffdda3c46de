// Package gittest runs git for tests: commands with a fixed identity, and a
// bare repository to stand for a GitHub remote.
package gittest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Git runs git with args in dir as author and committer "t", failing t with
// git's output when it fails; it returns the output, trimmed.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// BareRepo makes a bare repository (under t.TempDir) with one commit on
// main, README.md holding readme, and returns its path.
func BareRepo(t testing.TB, readme string) string {
	t.Helper()
	dir := t.TempDir()
	bare := filepath.Join(dir, "remote.git")
	Git(t, dir, "init", "--quiet", "--bare", "--initial-branch=main", bare)
	src := filepath.Join(dir, "src")
	Git(t, dir, "init", "--quiet", "--initial-branch=main", src)
	if err := os.WriteFile(filepath.Join(src, "README.md"), []byte(readme), 0o644); err != nil {
		t.Fatal(err)
	}
	Git(t, src, "add", ".")
	Git(t, src, "commit", "--quiet", "-m", "first")
	Git(t, src, "push", "--quiet", bare, "main")
	return bare
}

// RegistryRemote is a bare repository standing for TensorRT-LLM's remote
// with just a model registry (one Llama entry) on main: enough for runners
// that do not run the onboarding workflow.
func RegistryRemote(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	bare := filepath.Join(dir, "TensorRT-LLM.git")
	Git(t, dir, "init", "--quiet", "--bare", "--initial-branch=main", bare)
	src := filepath.Join(dir, "src")
	Git(t, dir, "init", "--quiet", "--initial-branch=main", src)
	reg := filepath.Join(src, "examples", "auto_deploy", "model_registry")
	if err := os.MkdirAll(reg, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(reg, "models.yaml"), []byte("models:\n# --- Llama (Jul 2024) ---\n- name: meta-llama/Llama-3.1-8B-Instruct\n  yaml_extra: [dashboard_default.yaml, world_size_1.yaml]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	Git(t, src, "add", ".")
	Git(t, src, "commit", "--quiet", "-m", "TensorRT-LLM stand-in")
	Git(t, src, "push", "--quiet", bare, "main")
	return bare
}
