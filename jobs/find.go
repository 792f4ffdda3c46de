package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/nvidia/adbot/bus"
)

// JobReader is the part of the job bucket Find reads.
type JobReader interface {
	Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error)
}

// Find returns the job that an issue or pull request number belongs to: the
// job of issue number itself, or, for a pull request (isPR), the job whose PR
// it is (through the index bus.UpdateJob keeps, bus.PRIndexKey). It returns
// bus.ErrNoJob (wrapped) when there is none. Every event on any pull request
// of an installed repository comes through here, in the webhook request: it
// costs one or two key reads, however many jobs the repository has had.
func Find(ctx context.Context, kv JobReader, owner, repo string, number int, isPR bool) (*bus.Job, error) {
	if !isPR {
		return get(ctx, kv, bus.JobKey(owner, repo, number))
	}
	e, err := kv.Get(ctx, bus.PRIndexKey(owner, repo, number))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil, fmt.Errorf("find job of %s/%s#%d: %w", owner, repo, number, bus.ErrNoJob)
	}
	if err != nil {
		return nil, fmt.Errorf("find job of %s/%s#%d: %w", owner, repo, number, err)
	}
	j, err := get(ctx, kv, string(e.Value()))
	if err != nil {
		return nil, err
	}
	if j.Owner != owner || j.Repo != repo || j.PR != number {
		return nil, fmt.Errorf("find job of %s/%s#%d: %w", owner, repo, number, bus.ErrNoJob)
	}
	return j, nil
}

func get(ctx context.Context, kv JobReader, key string) (*bus.Job, error) {
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil, fmt.Errorf("get job %s: %w", key, bus.ErrNoJob)
	}
	if err != nil {
		return nil, fmt.Errorf("get job %s: %w", key, err)
	}
	var j bus.Job
	if err := json.Unmarshal(e.Value(), &j); err != nil {
		return nil, fmt.Errorf("decode job %s: %w", key, err)
	}
	return &j, nil
}
