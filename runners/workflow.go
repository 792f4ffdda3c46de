package runners

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/rs/zerolog"
)

// Workflow is what a cycle does. Run returns nil when the cycle's work is
// done (the job then waits for review), an error when it failed (the job is
// marked failed with the error as its note), or an error wrapped by Transient
// to give the cycle back for a later try. Run must stop promptly when ctx ends.
type Workflow interface {
	Run(ctx context.Context, c *Cycle) error
}

// WorkflowFunc adapts a function to Workflow.
type WorkflowFunc func(ctx context.Context, c *Cycle) error

// Run calls f.
func (f WorkflowFunc) Run(ctx context.Context, c *Cycle) error { return f(ctx, c) }

type transientError struct{ err error }

func (e transientError) Error() string { return e.err.Error() }

func (e transientError) Unwrap() error { return e.err }

// Transient marks err as passing (a network outage, a busy service): the
// runner gives the cycle back to the queue to be tried again later instead of
// failing the job.
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return transientError{err}
}

// IsTransient reports whether err was marked with Transient.
func IsTransient(err error) bool {
	var t transientError
	return errors.As(err, &t)
}

// errForced says the runner was told to stop its cycles now.
var errForced = errors.New("runner forced to stop")

func runWorkflow(ctx context.Context, w Workflow, c *Cycle) (err error) {
	defer func() {
		if p := recover(); p != nil {
			zerolog.Ctx(ctx).Error().Interface("panic", p).Str("stack", string(debug.Stack())).Msg("workflow panicked")
			err = fmt.Errorf("workflow panicked: %v", p)
		}
	}()
	return w.Run(ctx, c)
}
