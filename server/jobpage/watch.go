package jobpage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/runners"
)

// DefaultRewatch is how long the page waits before watching the job bucket
// again after its watch ended on its own (a lost connection).
const DefaultRewatch = 2 * time.Second

// Run follows the running cycles' output and the job bucket until ctx ends,
// then closes every open event stream. It returns an error only when it
// cannot start.
func (p *Page) Run(ctx context.Context) error {
	defer p.hub.close()
	log := zerolog.Ctx(ctx)
	sub, err := p.nc.Subscribe(runners.LogSubjectPrefix+">", func(m *nats.Msg) {
		key := strings.TrimPrefix(m.Subject, runners.LogSubjectPrefix)
		var c runners.LogChunk
		if err := json.Unmarshal(m.Data, &c); err != nil {
			log.Debug().Err(err).Str("subject", m.Subject).Msg("job page: a log chunk that does not decode is dropped")
			return
		}
		p.hub.addChunk(key, c)
	})
	if err != nil {
		return fmt.Errorf("job page: subscribe to %s>: %w", runners.LogSubjectPrefix, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	for {
		err := p.watchJobs(ctx)
		if ctx.Err() != nil {
			return nil
		}
		log.Warn().Err(err).Msg("job page: the watch of the job bucket ended; watching again")
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(DefaultRewatch):
		}
	}
}

// watchJobs feeds the hub every job in the bucket, then every change, until
// ctx ends or the watch does.
func (p *Page) watchJobs(ctx context.Context) error {
	w, err := p.jobs.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch %s: %w", bus.JobBucket, err)
	}
	defer func() { _ = w.Stop() }()
	log := zerolog.Ctx(ctx)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("watch of the job bucket closed")
			}
			if e == nil {
				p.hub.markSynced()
				continue
			}
			key := e.Key()
			if strings.HasPrefix(key, "_") { // indexes, not jobs (bus.PRIndexKey)
				continue
			}
			if op := e.Operation(); op == jetstream.KeyValueDelete || op == jetstream.KeyValuePurge {
				p.hub.putJob(key, nil)
				continue
			}
			var j bus.Job
			if err := json.Unmarshal(e.Value(), &j); err != nil {
				log.Warn().Err(err).Str("job", key).Msg("job page: a job that does not decode is left out")
				continue
			}
			j.Key = key // the page's links and streams go by the bucket's key
			p.hub.putJob(key, &j)
		}
	}
}
