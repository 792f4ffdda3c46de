// Package runners is the GPU runner daemon: JetStream consumers, GPU inventory and
// admission, leases and heartbeats, workspaces, process execution and reporting to GitHub.
package runners

import (
	"context"
	"errors"
)

// Command runs `adbot runner`.
func Command(ctx context.Context, args []string) error { return errors.New("not built yet") }
