package server

import "github.com/palantir/go-githubapp/githubapp"

// clientMiddleware wraps every GitHub client's transport.
func clientMiddleware() []githubapp.ClientMiddleware { return nil }
