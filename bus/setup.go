package bus

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func itoa(n int) string { return strconv.Itoa(n) }

// Resources are the JetStream handles both sides use.
type Resources struct {
	JS         jetstream.JetStream
	Cycles     jetstream.Stream
	Commands   jetstream.Stream
	Jobs       jetstream.KeyValue
	Leases     jetstream.KeyValue
	Runners    jetstream.KeyValue
	Deliveries jetstream.KeyValue
	Logs       jetstream.ObjectStore
}

// Options shape the resources Ensure creates. The zero value is the default:
// file storage, one replica.
type Options struct {
	// Memory keeps everything in memory (tests, benchmarks).
	Memory bool
	// Replicas is the replication factor on a cluster (1 if zero).
	Replicas int
	// CycleAckWait overrides AckWait on the cycle consumers, and LeaseTTL the
	// lease bucket's TTL (zero: the defaults). Runners read both back from the
	// bus, so tests that kill runners can have their cycles taken over in
	// about a second instead of minutes.
	CycleAckWait time.Duration
	LeaseTTL     time.Duration
}

// Ensure creates or updates the stream, consumers and buckets adbot uses.
// It is idempotent: server and runners both call it on start.
func Ensure(ctx context.Context, js jetstream.JetStream, opt Options) (*Resources, error) {
	storage := jetstream.FileStorage
	kvStorage := jetstream.FileStorage
	if opt.Memory {
		storage, kvStorage = jetstream.MemoryStorage, jetstream.MemoryStorage
	}
	replicas := max(opt.Replicas, 1)
	subjects := make([]string, 0, len(GPUSizes))
	for _, n := range GPUSizes {
		subjects = append(subjects, CycleSubject(n))
	}
	r := &Resources{JS: js}
	var err error
	r.Cycles, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        CycleStream,
		Description: "adbot cycles waiting for a GPU runner",
		Subjects:    subjects,
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     storage,
		Replicas:    replicas,
		Duplicates:  DuplicateWindow,
	})
	if err != nil {
		return nil, fmt.Errorf("ensure stream %s: %w", CycleStream, err)
	}
	for _, n := range GPUSizes {
		_, err := r.Cycles.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
			Durable:       ConsumerName(n),
			Description:   fmt.Sprintf("cycles that need %d GPUs, shared by all runners", n),
			FilterSubject: CycleSubject(n),
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       cmp.Or(opt.CycleAckWait, AckWait),
			MaxDeliver:    MaxDeliver,
		})
		if err != nil {
			return nil, fmt.Errorf("ensure consumer %s: %w", ConsumerName(n), err)
		}
	}
	r.Commands, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        CommandStream,
		Description: "webhook deliveries turned into commands, waiting for the server's worker",
		Subjects:    []string{CommandSubject},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     storage,
		Replicas:    replicas,
		Duplicates:  DuplicateWindow,
	})
	if err != nil {
		return nil, fmt.Errorf("ensure stream %s: %w", CommandStream, err)
	}
	if _, err := r.Commands.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       CommandConsumer,
		Description:   "the server's command workers",
		FilterSubject: CommandSubject,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxDeliver:    MaxDeliver,
	}); err != nil {
		return nil, fmt.Errorf("ensure consumer %s: %w", CommandConsumer, err)
	}
	kv := func(name, desc string, ttl time.Duration, history uint8) (jetstream.KeyValue, error) {
		b, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      name,
			Description: desc,
			TTL:         ttl,
			History:     history,
			Storage:     kvStorage,
			Replicas:    replicas,
		})
		if err != nil {
			return nil, fmt.Errorf("ensure key-value bucket %s: %w", name, err)
		}
		return b, nil
	}
	if r.Jobs, err = kv(JobBucket, "adbot job state", 0, 5); err != nil {
		return nil, err
	}
	if r.Leases, err = kv(LeaseBucket, "which runner works on a job", cmp.Or(opt.LeaseTTL, LeaseTTL), 1); err != nil {
		return nil, err
	}
	if r.Runners, err = kv(RunnerBucket, "runner heartbeats", PresenceTTL, 1); err != nil {
		return nil, err
	}
	if r.Deliveries, err = kv(DeliveryBucket, "processed webhook deliveries", DeliveryTTL, 1); err != nil {
		return nil, err
	}
	r.Logs, err = js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      LogStore,
		Description: "full raw logs of every cycle",
		Storage:     storage,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("ensure object store %s: %w", LogStore, err)
	}
	return r, nil
}

// ErrNoJob is returned by GetJob and UpdateJob when the key holds no job.
var ErrNoJob = errors.New("no such job")

// GetJob reads a job and the revision it was read at.
func GetJob(ctx context.Context, kv JobReader, key string) (*Job, uint64, error) {
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil, 0, fmt.Errorf("get job %s: %w", key, ErrNoJob)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("get job %s: %w", key, err)
	}
	var j Job
	if err := json.Unmarshal(e.Value(), &j); err != nil {
		return nil, 0, fmt.Errorf("decode job %s: %w", key, err)
	}
	return &j, e.Revision(), nil
}

// CreateJob stores a new job; it fails with jetstream.ErrKeyExists when one exists.
func CreateJob(ctx context.Context, kv jetstream.KeyValue, j *Job) (uint64, error) {
	now := time.Now().UTC()
	if j.Created.IsZero() {
		j.Created = now
	}
	j.Updated = now
	b, err := json.Marshal(j)
	if err != nil {
		return 0, fmt.Errorf("encode job %s: %w", j.Key, err)
	}
	if err := indexPR(ctx, kv, j, 0); err != nil {
		return 0, err
	}
	rev, err := kv.Create(ctx, j.Key, b)
	if err != nil {
		return 0, fmt.Errorf("create job %s: %w", j.Key, err)
	}
	return rev, nil
}

// PRIndexKey is the key, in JobBucket, of the entry that names the job whose
// pull request is owner/repo#pr. GitHub logins never hold '_', so no job key
// starts with "_pr.".
func PRIndexKey(owner, repo string, pr int) string { return "_pr." + JobKey(owner, repo, pr) }

// indexPR records j's pull request in the index when it differs from was.
// It is written before the job itself: an entry whose job does not (yet) say
// that pull request is harmless, since readers check that the job names it (Find), while
// a job whose pull request no entry names would be lost to every event on it.
func indexPR(ctx context.Context, kv jetstream.KeyValue, j *Job, was int) error {
	if j.PR == 0 || j.PR == was {
		return nil
	}
	if _, err := kv.Put(ctx, PRIndexKey(j.Owner, j.Repo, j.PR), []byte(j.Key)); err != nil {
		return fmt.Errorf("index pull request %s/%s#%d of job %s: %w", j.Owner, j.Repo, j.PR, j.Key, err)
	}
	return nil
}

// ErrUnchanged may be returned by an UpdateJob mutation to write nothing.
var ErrUnchanged = errors.New("job unchanged")

// UpdateJob applies mutate to the stored job by compare-and-swap, reading again
// and re-applying mutate when another writer got there first. mutate must be a
// pure function of the job it is given. Returning ErrUnchanged writes nothing
// and UpdateJob returns the job as read with a nil error; any other error
// aborts and is returned.
func UpdateJob(ctx context.Context, kv jetstream.KeyValue, key string, mutate func(*Job) error) (*Job, error) {
	j, _, err := updateJob(ctx, kv, key, nil, 0, mutate)
	return j, err
}

// updateJob is UpdateJob that, given known (the job as stored at revision
// rev, which updateJob may change), tries it first instead of reading the job:
// a read saved whenever nobody wrote the job since. It also returns the
// revision of the job it returns.
func updateJob(ctx context.Context, kv jetstream.KeyValue, key string, known *Job, rev uint64, mutate func(*Job) error) (*Job, uint64, error) {
	for attempt := 0; ; attempt++ {
		j := known
		if attempt > 0 || known == nil {
			var err error
			j, rev, err = GetJob(ctx, kv, key)
			if err != nil {
				return nil, 0, err
			}
		}
		prWas := j.PR
		if err := mutate(j); errors.Is(err, ErrUnchanged) {
			return j, rev, nil
		} else if err != nil {
			return nil, 0, err
		}
		if err := indexPR(ctx, kv, j, prWas); err != nil {
			return nil, 0, err
		}
		j.Updated = time.Now().UTC()
		b, err := json.Marshal(j)
		if err != nil {
			return nil, 0, fmt.Errorf("encode job %s: %w", key, err)
		}
		next, err := kv.Update(ctx, key, b, rev)
		if err == nil {
			return j, next, nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return nil, 0, fmt.Errorf("update job %s: %w", key, err)
		}
		if attempt >= 50 {
			return nil, 0, fmt.Errorf("update job %s: gave up after %d conflicting writes", key, attempt+1)
		}
		select {
		case <-ctx.Done():
			return nil, 0, fmt.Errorf("update job %s: %w", key, ctx.Err())
		case <-time.After(time.Duration(attempt+1) * time.Millisecond):
		}
	}
}

// clone is a copy of j that shares nothing changeable with it.
func (j *Job) clone() *Job {
	c := *j
	if j.Outbox != nil {
		o := *j.Outbox
		o.Feedback = slices.Clone(o.Feedback)
		c.Outbox = &o
	}
	c.PendingFeedback = slices.Clone(j.PendingFeedback)
	c.RunnerGPUs = slices.Clone(j.RunnerGPUs)
	c.Posted = maps.Clone(j.Posted)
	return &c
}
