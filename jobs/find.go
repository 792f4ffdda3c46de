package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/nvidia/adbot/bus"
)

// JobReader is the part of the job bucket Find reads.
type JobReader interface {
	Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error)
	ListKeysFiltered(ctx context.Context, filters ...string) (jetstream.KeyLister, error)
}

// Find returns the job that an issue or pull request number belongs to: the
// job of issue number itself, or, for a pull request (isPR), the job whose PR
// it is. It returns bus.ErrNoJob (wrapped) when there is none.
//
// A job is keyed by its issue; its pull request is found by reading the
// repository's jobs and comparing PR. The key filter is the job key with its
// issue token a wildcard, so the jobs of the owner's other repositories are
// never read: every event on any pull request of an installed repository
// comes through here, in the webhook request.
func Find(ctx context.Context, kv JobReader, owner, repo string, number int, isPR bool) (*bus.Job, error) {
	if !isPR {
		return get(ctx, kv, bus.JobKey(owner, repo, number))
	}
	repoKeys := strings.TrimSuffix(bus.JobKey(owner, repo, 0), "0") + "*"
	lister, err := kv.ListKeysFiltered(ctx, repoKeys)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, fmt.Errorf("find job of %s/%s#%d: %w", owner, repo, number, bus.ErrNoJob)
	}
	if err != nil {
		return nil, fmt.Errorf("find job of %s/%s#%d: %w", owner, repo, number, err)
	}
	defer func() { _ = lister.Stop() }()
	var found *bus.Job
	for key := range lister.Keys() {
		if found != nil {
			continue // drain
		}
		j, err := get(ctx, kv, key)
		if errors.Is(err, bus.ErrNoJob) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		if j.Repo == repo && j.Owner == owner && j.PR == number {
			found = j
		}
	}
	if found == nil {
		return nil, fmt.Errorf("find job of %s/%s#%d: %w", owner, repo, number, bus.ErrNoJob)
	}
	return found, nil
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
