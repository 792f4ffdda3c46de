// Package preflight implements `adbot preflight`.
package preflight

import (
	"context"
	"errors"
)

// Command runs `adbot preflight <model-id>`.
func Command(ctx context.Context, args []string) error { return errors.New("not built yet") }
