package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/go-github/v62/github"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/nvidia/adbot/bus"
)

// hookDeliveries lists and redelivers the App's webhook deliveries.
// *github.AppsService satisfies it.
type hookDeliveries interface {
	ListHookDeliveries(ctx context.Context, opts *github.ListCursorOptions) ([]*github.HookDelivery, *github.Response, error)
	RedeliverHookDelivery(ctx context.Context, deliveryID int64) (*github.HookDelivery, *github.Response, error)
}

// processedStore says whether a delivery GUID reached the command worker:
// the adbot-deliveries bucket holds a record under bus.DeliveryKey(guid)
// for each delivery the worker took (done, or in progress).
type processedStore interface {
	Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error)
}

// sweeper asks GitHub to redeliver deliveries that failed and were never
// processed: GitHub itself never retries. GitHub keeps three days of them.
type sweeper struct {
	apps      func() (hookDeliveries, error)
	processed processedStore
	interval  time.Duration
	window    time.Duration
	maxPages  int
	// maxAttempts bounds the redeliveries this process asks for one GUID.
	maxAttempts int
	now         func() time.Time
	metrics     *metrics

	// asked counts, per GUID, the redeliveries asked for, and when last.
	asked map[string]askRecord
}

type askRecord struct {
	n    int
	last time.Time
}

func (s *Server) newSweeper() (*sweeper, error) {
	return &sweeper{
		apps: func() (hookDeliveries, error) {
			c, err := s.clients.NewAppClient()
			if err != nil {
				return nil, fmt.Errorf("app client: %w", err)
			}
			return c.Apps, nil
		},
		processed:   s.res.Deliveries,
		interval:    s.cfg.Sweeper.Interval,
		window:      s.cfg.Sweeper.Window,
		maxPages:    s.cfg.Sweeper.MaxPages,
		maxAttempts: s.cfg.Sweeper.MaxAttempts,
		now:         time.Now,
		metrics:     s.metrics,
		asked:       map[string]askRecord{},
	}, nil
}

// Run sweeps at once, then every interval, until ctx is cancelled. A failed
// sweep is logged and counted; the next one tries again.
func (sw *sweeper) Run(ctx context.Context) error {
	log := zerolog.Ctx(ctx).With().Str(LogKeyComponent, "sweeper").Logger()
	t := time.NewTicker(sw.interval)
	defer t.Stop()
	for {
		n, err := sw.Sweep(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			sw.metrics.sweeps.WithLabelValues("error").Inc()
			log.Error().Err(err).Msg("redelivery sweep failed")
		default:
			sw.metrics.sweeps.WithLabelValues("ok").Inc()
			if n > 0 {
				log.Info().Int("redelivered", n).Msg("redelivery sweep asked GitHub for failed deliveries")
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Sweep lists the deliveries of the window, newest first, page by page, and
// asks for a redelivery of each failed GUID that never succeeded and was never
// processed, once per GUID. It returns the number of redeliveries asked for.
func (sw *sweeper) Sweep(ctx context.Context) (int, error) {
	apps, err := sw.apps()
	if err != nil {
		return 0, err
	}
	now := sw.now()
	since := now.Add(-sw.window)
	for guid, a := range sw.asked {
		if a.last.Before(since) {
			delete(sw.asked, guid)
		}
	}
	// Rows come newest first; a GUID's latest row decides, and one success
	// anywhere in the window means the GUID is done.
	type candidate struct {
		id   int64
		when time.Time
	}
	succeeded := map[string]bool{}
	failed := map[string]candidate{}
	var order []string
	opts := &github.ListCursorOptions{PerPage: 100}
	for page := 0; ; page++ {
		if page >= sw.maxPages {
			zerolog.Ctx(ctx).Warn().Int("pages", page).Msg("redelivery sweep stopped at its page limit")
			break
		}
		rows, resp, err := apps.ListHookDeliveries(ctx, opts)
		if err != nil {
			return 0, fmt.Errorf("list hook deliveries: %w", err)
		}
		old := false
		for _, d := range rows {
			when := d.GetDeliveredAt().Time
			if !when.IsZero() && when.Before(since) {
				old = true
				continue
			}
			guid := d.GetGUID()
			if guid == "" {
				continue
			}
			if deliveryOK(d) {
				succeeded[guid] = true
				continue
			}
			if _, seen := failed[guid]; !seen {
				failed[guid] = candidate{id: d.GetID(), when: when}
				order = append(order, guid)
			}
		}
		if old || resp == nil || resp.Cursor == "" || len(rows) == 0 {
			break
		}
		opts = &github.ListCursorOptions{PerPage: 100, Cursor: resp.Cursor}
	}
	n := 0
	var errs []error
	for _, guid := range order {
		if succeeded[guid] {
			continue
		}
		if sw.asked[guid].n >= sw.maxAttempts {
			continue
		}
		done, err := sw.isProcessed(ctx, guid)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if done {
			continue
		}
		c := failed[guid]
		if _, _, err := apps.RedeliverHookDelivery(ctx, c.id); err != nil && !isAccepted(err) {
			if ctx.Err() != nil {
				return n, ctx.Err()
			}
			errs = append(errs, fmt.Errorf("redeliver hook delivery %d (%s): %w", c.id, guid, err))
			continue
		}
		sw.asked[guid] = askRecord{n: sw.asked[guid].n + 1, last: now}
		sw.metrics.redelivered.Inc()
		n++
	}
	return n, errors.Join(errs...)
}

// deliveryOK reports whether GitHub recorded the delivery as answered 2xx.
func deliveryOK(d *github.HookDelivery) bool {
	if c := d.GetStatusCode(); c != 0 {
		return c >= 200 && c < 300
	}
	return d.GetStatus() == "OK"
}

func (sw *sweeper) isProcessed(ctx context.Context, guid string) (bool, error) {
	_, err := sw.processed.Get(ctx, bus.DeliveryKey(guid))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		return false, nil
	case errors.Is(err, jetstream.ErrInvalidKey):
		return false, nil
	default:
		return false, fmt.Errorf("look up delivery %s: %w", guid, err)
	}
}

// isAccepted reports whether err is go-github's AcceptedError: GitHub answers a
// redelivery request 202, which go-github reports as an error.
func isAccepted(err error) bool {
	var ae *github.AcceptedError
	return errors.As(err, &ae)
}
