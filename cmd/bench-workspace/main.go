// Command bench-workspace measures a job's workspace set-up on a large
// repository: a new git worktree from the runner's bare mirror (workspace
// package, as the runner does it before each cycle: fetch, then add) against
// a fresh clone of the same remote.
//
// It first generates the remote with git fast-import: -files files in the
// first commit, then -commits commits each changing -touch files.
//
//	go run ./cmd/bench-workspace -files 50000 -commits 5000 -touch 20
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nvidia/adbot/runners/workspace"
)

func main() {
	files := flag.Int("files", 50000, "files in the generated repository")
	commits := flag.Int("commits", 5000, "commits after the first")
	touch := flag.Int("touch", 20, "files each later commit changes")
	jobs := flag.Int("jobs", 5, "worktrees to time after the first")
	dir := flag.String("dir", "", "working directory (a temporary one, removed after, when empty)")
	flag.Parse()
	if *files < 1 || *commits < 0 || *touch < 0 || *jobs < 1 {
		fmt.Fprintln(os.Stderr, "bench-workspace: want -files and -jobs of at least 1, -commits and -touch of at least 0")
		os.Exit(2)
	}
	if err := run(*dir, *files, *commits, *touch, *jobs); err != nil {
		fmt.Fprintln(os.Stderr, "bench-workspace:", err)
		os.Exit(1)
	}
}

func run(dir string, files, commits, touch, jobs int) error {
	ctx := context.Background()
	if dir == "" {
		d, err := os.MkdirTemp("", "bench-workspace-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	remote := filepath.Join(dir, "remote.git")
	t0 := time.Now()
	if err := generate(remote, files, commits, touch); err != nil {
		return err
	}
	gen := time.Since(t0)
	size, _ := dirSize(remote)
	fmt.Printf("remote: %d files, %d commits, %.0f MiB packed; generated in %s\n", files, commits+1, float64(size)/(1<<20), gen.Round(time.Millisecond))

	// A fresh clone, without the local-path shortcuts (hard links): every
	// object is packed, sent and unpacked, as from a server.
	t0 = time.Now()
	if err := git("", "clone", "--quiet", "--no-local", remote, filepath.Join(dir, "clone")); err != nil {
		return err
	}
	clone := time.Since(t0)
	fmt.Printf("fresh clone (git clone --no-local):            %8s\n", clone.Round(time.Millisecond))

	m := &workspace.Mirror{Dir: filepath.Join(dir, "mirror.git"), Remote: "file://" + remote, WorkRoot: filepath.Join(dir, "worktrees"), DiskFloor: -1}
	t0 = time.Now()
	if err := m.Ensure(ctx); err != nil {
		return err
	}
	fmt.Printf("mirror, once per host (clone --bare + fetch):  %8s\n", time.Since(t0).Round(time.Millisecond))

	job := func(i int) (time.Duration, time.Duration, *workspace.Worktree, error) {
		t0 := time.Now()
		if err := m.Fetch(ctx); err != nil {
			return 0, 0, nil, err
		}
		fetch := time.Since(t0)
		w, err := m.Add(ctx, fmt.Sprintf("adbot/bench-%d", i))
		return fetch, time.Since(t0), w, err
	}
	fetch, first, w, err := job(0)
	if err != nil {
		return err
	}
	if err := w.Release(ctx); err != nil {
		return err
	}
	fmt.Printf("first job on a host (fetch + worktree add):    %8s  (fetch %s)  = %5.1f%% of the clone\n", first.Round(time.Millisecond), fetch.Round(time.Millisecond), pct(first, clone))
	var times []time.Duration
	for i := 1; i <= jobs; i++ {
		_, d, w, err := job(i)
		if err != nil {
			return err
		}
		// Every job works and leaves changes behind; Release cleans them.
		if err := os.WriteFile(filepath.Join(w.Dir, "scratch.txt"), []byte("x"), 0o644); err != nil {
			return err
		}
		times = append(times, d)
		if err := w.Release(ctx); err != nil {
			return err
		}
	}
	slices.Sort(times)
	med := times[len(times)/2]
	fmt.Printf("next jobs (fetch + recycled worktree), median of %d: %8s  = %5.1f%% of the clone  (min %s, max %s)\n",
		jobs, med.Round(time.Millisecond), pct(med, clone), times[0].Round(time.Millisecond), times[len(times)-1].Round(time.Millisecond))
	return nil
}

func pct(a, b time.Duration) float64 { return 100 * float64(a) / float64(b) }

// generate makes a bare repository at path with git fast-import.
func generate(path string, files, commits, touch int) error {
	if err := git("", "init", "--quiet", "--bare", "--initial-branch=main", path); err != nil {
		return err
	}
	cmd := exec.Command("git", "fast-import", "--quiet")
	cmd.Dir = path
	cmd.Env = gitEnv()
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	w := bufio.NewWriterSize(in, 1<<20)
	r := rand.New(rand.NewPCG(1, 2))
	name := func(i int) string { return fmt.Sprintf("src/mod%03d/sub%d/file%05d.py", i%500, (i/500)%4, i) }
	blob := func(w io.Writer, i, rev int) {
		body := fmt.Sprintf("# file %d, revision %d\n%s\ndef f_%d():\n    return %d\n", i, rev, strings.Repeat("x = 1  # filler\n", 2+i%8), i, r.IntN(1<<30))
		fmt.Fprintf(w, "data %d\n%s\n", len(body), body)
	}
	when := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	commit := func(n int, msg string) {
		fmt.Fprintf(w, "commit refs/heads/main\ncommitter Bench <bench@example.com> %d +0000\ndata %d\n%s\n", when+int64(n)*600, len(msg), msg)
	}
	commit(0, "initial import")
	for i := range files {
		fmt.Fprintf(w, "M 100644 inline %s\n", name(i))
		blob(w, i, 0)
	}
	w.WriteString("\n")
	for c := 1; c <= commits; c++ {
		commit(c, fmt.Sprintf("change %d", c))
		for range touch {
			i := r.IntN(files)
			fmt.Fprintf(w, "M 100644 inline %s\n", name(i))
			blob(w, i, c)
		}
		w.WriteString("\n")
	}
	ferr := w.Flush()
	in.Close()
	if err := cmd.Wait(); ferr != nil {
		return fmt.Errorf("git fast-import: write its input: %w", ferr)
	} else if err != nil {
		return fmt.Errorf("git fast-import: %w", err)
	}
	// As a server would hold it: one pack.
	return git(path, "repack", "-adq")
}

func git(dir string, args ...string) error {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = gitEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("git %s: %w: %s", args[0], err, out)
	}
	return nil
}

func gitEnv() []string {
	return append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0")
}

func dirSize(path string) (int64, error) {
	var n int64
	err := filepath.Walk(path, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n, err
}
