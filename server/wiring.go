package server

import (
	"context"
	"errors"

	"github.com/palantir/go-githubapp/githubapp"
	"github.com/rs/zerolog"
)

// This file connects the server to the packages that do the work: handlers/
// (events to commands), jobs/ (the command worker) and runners/ (the dev
// runner). Nothing else in server/ knows them.

// worker is the command worker: it consumes adbot.commands until ctx ends.
type worker interface {
	Run(ctx context.Context) error
}

// eventHandlers builds the webhook's event handlers.
func (s *Server) eventHandlers() ([]githubapp.EventHandler, error) {
	return nil, nil
}

// errNoWorker is returned while no command worker is built into this binary.
var errNoWorker = errors.New("command worker: jobs package not available in this build")

// newWorker builds the command worker.
func (s *Server) newWorker() (worker, error) { return nil, errNoWorker }

// localRunner is adbot dev's in-process runner.
func localRunner() func(ctx context.Context, s *Server) error {
	return func(ctx context.Context, s *Server) error {
		zerolog.Ctx(ctx).Warn().Msg("no runner capacity: this build has no local runner; cycles wait on the stream")
		<-ctx.Done()
		return nil
	}
}
