package jobs_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/bus/bustest"
	"github.com/nvidia/adbot/jobs"
)

// countingReader counts the job entries Find reads.
type countingReader struct {
	jetstream.KeyValue
	gets atomic.Int64
}

func (c *countingReader) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	c.gets.Add(1)
	return c.KeyValue.Get(ctx, key)
}

// Find of a pull request used to read every job of the owner, in every
// repository, for each event on any pull request.
func TestFindPRReadsOnlyItsRepository(t *testing.T) {
	_, _, r := bustest.Start(t)
	ctx := context.Background()
	put := func(repo string, issue, pr int) {
		t.Helper()
		if _, err := bus.CreateJob(ctx, r.Jobs, &bus.Job{Key: bus.JobKey("NVIDIA", repo, issue), Owner: "NVIDIA", Repo: repo, Issue: issue, PR: pr}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 20; i++ {
		put("other", i, 100+i)
	}
	put("models", 1, 7)
	put("models.v2", 2, 7) // a dotted name sharing the prefix
	put(".github", 3, 7)

	kv := &countingReader{KeyValue: r.Jobs}
	for _, repo := range []string{"models", "models.v2", ".github"} {
		kv.gets.Store(0)
		j, err := jobs.Find(ctx, kv, "NVIDIA", repo, 7, true)
		if err != nil || j.Repo != repo || j.PR != 7 {
			t.Fatalf("Find(%s, PR 7) = %+v, %v", repo, j, err)
		}
		if n := kv.gets.Load(); n != 1 {
			t.Errorf("Find(%s, PR 7) read %d jobs, want only its repository's one", repo, n)
		}
	}
	if _, err := jobs.Find(ctx, kv, "NVIDIA", "models", 8, true); !errors.Is(err, bus.ErrNoJob) {
		t.Errorf("Find(models, PR 8) error = %v, want ErrNoJob", err)
	}
	if _, err := jobs.Find(ctx, kv, "NVIDIA", "nothing", 7, true); !errors.Is(err, bus.ErrNoJob) {
		t.Errorf("Find(nothing, PR 7) error = %v, want ErrNoJob", err)
	}
}
