package server

import (
	"github.com/palantir/go-githubapp/githubapp"

	"github.com/nvidia/adbot/internal/ghretry"
)

// clientMiddleware wraps every GitHub client's transport: requests that fail
// for a passing reason (5xx, 429, rate-limited 403) are retried as GitHub
// asks, each wait bounded by the request's context.
func clientMiddleware() []githubapp.ClientMiddleware {
	return []githubapp.ClientMiddleware{ghretry.Middleware(ghretry.Options{})}
}
