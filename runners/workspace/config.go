package workspace

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// ErrForeignConfig is wrapped by CheckConfig's error when a repository's own
// configuration holds a setting adbot does not make.
var ErrForeignConfig = errors.New("git configuration holds settings adbot does not make")

// CheckConfig checks the repository configuration (the local file, shared
// by the mirror and every worktree, and a worktree's own) that git reads in
// dir: it may hold only what git writes for the mirror and its worktrees,
// with origin at remote. A cycle's processes (the agent, as the runner's
// user) can write that file; a pushurl, an insteadOf, a proxy, sslVerify, a
// credential helper or an askpass program left there would send fetches,
// pushes or a token elsewhere, or run a program. env is added to git's
// environment.
func CheckConfig(ctx context.Context, dir string, env []string, remote string) error {
	out, err := git(ctx, dir, env, "config", "--null", "--show-scope", "--list")
	if err != nil {
		return fmt.Errorf("read git configuration of %s: %w", dir, err)
	}
	f := strings.Split(strings.TrimSuffix(out, "\x00"), "\x00")
	if len(f)%2 != 0 {
		return fmt.Errorf("read git configuration of %s: %d fields, want scope and entry pairs", dir, len(f))
	}
	var bad []string
	for i := 0; i < len(f); i += 2 {
		scope := f[i]
		key, value, _ := strings.Cut(f[i+1], "\n")
		if scope != "local" && scope != "worktree" {
			continue // the host's own files, and what we set on the command line
		}
		if !configAllowed(key, value, remote) {
			bad = append(bad, scope+" "+key)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%s: %w: %s", dir, ErrForeignConfig, strings.Join(bad, ", "))
	}
	return nil
}

// configKeys are the settings git itself writes for a bare mirror and its
// worktrees, and a committer identity.
var configKeys = map[string]bool{
	"core.repositoryformatversion": true, "core.filemode": true, "core.bare": true,
	"core.logallrefupdates": true, "core.ignorecase": true, "core.precomposeunicode": true,
	"core.symlinks": true, "extensions.worktreeconfig": true,
	"remote.origin.fetch": true, "user.name": true, "user.email": true,
}

func configAllowed(key, value, remote string) bool {
	switch {
	case configKeys[key]:
		return true
	case key == "remote.origin.url":
		return value == remote
	case strings.HasPrefix(key, "branch.") && strings.HasSuffix(key, ".remote"):
		return value == "origin"
	case strings.HasPrefix(key, "branch.") && strings.HasSuffix(key, ".merge"):
		return true
	}
	return false
}
