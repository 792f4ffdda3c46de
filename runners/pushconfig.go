package runners

import (
	"context"
	"fmt"
	"strings"

	"github.com/nvidia/adbot/runners/workspace"
)

// pushGitEnv keeps a push that carries a token away from configuration a
// cycle's own processes can write: the system and global files (the agent
// runs as the runner's user, with its HOME) are not read, and no hook runs,
// since a hook would run with the token in its environment.
var pushGitEnv = []string{"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null"}

// checkPushConfig refuses a push with a token when the repository's own
// configuration (the mirror's, shared by every worktree, and the worktree's)
// holds anything beyond what the mirror and its worktrees need: a pushurl,
// an insteadOf, a proxy, a credential helper, an askpass program or
// sslVerify set there by a cycle's process would send the token elsewhere or
// hand it to a program. origin must still be remote.
func checkPushConfig(ctx context.Context, dir, remote string) error {
	out, err := workspace.Git(ctx, dir, pushGitEnv, "config", "--null", "--show-scope", "--list")
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
		if scope == "command" {
			continue // ours, from the environment
		}
		if !pushConfigAllowed(key, value, remote) {
			bad = append(bad, fmt.Sprintf("%s %s", scope, key))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("not pushing with a token: the repository's git configuration holds %s, which adbot does not set", strings.Join(bad, ", "))
	}
	return nil
}

// pushConfigKeys are the settings git itself writes for a bare mirror and
// its worktrees, and a committer identity.
var pushConfigKeys = map[string]bool{
	"core.repositoryformatversion": true, "core.filemode": true, "core.bare": true,
	"core.logallrefupdates": true, "core.ignorecase": true, "core.precomposeunicode": true,
	"core.symlinks": true, "extensions.worktreeconfig": true,
	"remote.origin.fetch": true, "user.name": true, "user.email": true,
}

func pushConfigAllowed(key, value, remote string) bool {
	switch {
	case pushConfigKeys[key]:
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
