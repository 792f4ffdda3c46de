package bus

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// LogKeyJob is the log key for a job's key (JobKey), the same on the server
// and on runners.
const LogKeyJob = "job"

// DefaultTriggerLabel is the issue label that asks for onboarding
// (ADBOT_TRIGGER_LABEL): the webhook handlers look for it, the command
// worker's help names it.
const DefaultTriggerLabel = "ad-onboard"

// JobReader is the part of the job bucket that GetJob and Find read;
// jetstream.KeyValue satisfies it.
type JobReader interface {
	Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error)
}

// Find returns the job that an issue or pull request number belongs to: the
// job of issue number itself, or, for a pull request (isPR), the job whose PR
// it is (through the index UpdateJob keeps, PRIndexKey). It returns ErrNoJob
// (wrapped) when there is none. Every event on any pull request of an
// installed repository comes through here, in the webhook request: it costs
// one or two key reads, however many jobs the repository has had.
func Find(ctx context.Context, kv JobReader, owner, repo string, number int, isPR bool) (*Job, error) {
	if !isPR {
		j, _, err := GetJob(ctx, kv, JobKey(owner, repo, number))
		return j, err
	}
	e, err := kv.Get(ctx, PRIndexKey(owner, repo, number))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil, fmt.Errorf("find job of %s/%s#%d: %w", owner, repo, number, ErrNoJob)
	}
	if err != nil {
		return nil, fmt.Errorf("find job of %s/%s#%d: %w", owner, repo, number, err)
	}
	key := string(e.Value())
	if !ValidJobKey(key) {
		return nil, fmt.Errorf("find job of %s/%s#%d: index entry %q is no job key: %w", owner, repo, number, clipKey(key), ErrNoJob)
	}
	j, _, err := GetJob(ctx, kv, key)
	if err != nil {
		return nil, err
	}
	if j.Owner != owner || j.Repo != repo || j.PR != number {
		return nil, fmt.Errorf("find job of %s/%s#%d: %w", owner, repo, number, ErrNoJob)
	}
	return j, nil
}
