package server

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
)

// group runs goroutines that share a context: the first to fail cancels the
// rest, a panic is recovered and returned as an error, and Wait returns only
// when every goroutine has exited.
type group struct {
	wg     sync.WaitGroup
	cancel context.CancelFunc
	once   sync.Once
	err    error
}

func newGroup(ctx context.Context) (*group, context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	return &group{cancel: cancel}, ctx
}

// Go runs f in a goroutine named name (for errors).
func (g *group) Go(name string, f func() error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		err := func() (err error) {
			defer func() {
				if p := recover(); p != nil {
					err = fmt.Errorf("%s: panic: %v\n%s", name, p, debug.Stack())
				}
			}()
			return f()
		}()
		if err != nil {
			g.once.Do(func() { g.err = fmt.Errorf("%s: %w", name, err) })
			g.cancel()
		}
	}()
}

// Stop cancels the group's context.
func (g *group) Stop() { g.cancel() }

// Wait waits for every goroutine and returns the first error.
func (g *group) Wait() error {
	g.wg.Wait()
	g.cancel()
	return g.err
}

// Abort stops the group, waits for every goroutine and returns err: for a
// failure while starting, which matters more than how the goroutines ended.
func (g *group) Abort(err error) error {
	g.Stop()
	_ = g.Wait()
	return err
}
