package runners

import (
	"context"
	"fmt"

	"github.com/nvidia/adbot/runners/workspace"
)

// pushGitEnv keeps a push that carries a token away from configuration a
// cycle's own processes can write: the system and global files (the agent
// runs as the runner's user, with its HOME) are not read.
var pushGitEnv = []string{"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null"}

// checkPushConfig refuses a push with a token when the repository's
// configuration holds anything beyond what the mirror and its worktrees need
// (workspace.CheckConfig): a pushurl, an insteadOf, a proxy, a credential
// helper or an askpass program set there would send the token elsewhere or
// hand it to a program.
func checkPushConfig(ctx context.Context, dir, remote string) error {
	if err := workspace.CheckConfig(ctx, dir, pushGitEnv, remote); err != nil {
		return fmt.Errorf("not pushing with a token: %w", err)
	}
	return nil
}
