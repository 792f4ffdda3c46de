package bus_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/bus/bustest"
)

// countingReader counts the job entries Find reads.
type countingReader struct {
	jetstream.KeyValue
	gets atomic.Int64
}

func (c *countingReader) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	if !strings.HasPrefix(key, "_pr.") { // count job reads, not index reads
		c.gets.Add(1)
	}
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
		put("models", 100+i, 200+i) // the repository's own history
	}
	put("models", 1, 7)
	put("models.v2", 2, 7) // a dotted name sharing the prefix
	put(".github", 3, 7)

	kv := &countingReader{KeyValue: r.Jobs}
	for _, repo := range []string{"models", "models.v2", ".github"} {
		kv.gets.Store(0)
		j, err := bus.Find(ctx, kv, "NVIDIA", repo, 7, true)
		if err != nil || j.Repo != repo || j.PR != 7 {
			t.Fatalf("Find(%s, PR 7) = %+v, %v", repo, j, err)
		}
		if n := kv.gets.Load(); n != 1 {
			t.Errorf("Find(%s, PR 7) read %d jobs, want only its repository's one", repo, n)
		}
	}
	if _, err := bus.Find(ctx, kv, "NVIDIA", "models", 8, true); !errors.Is(err, bus.ErrNoJob) {
		t.Errorf("Find(models, PR 8) error = %v, want ErrNoJob", err)
	}
	if _, err := bus.Find(ctx, kv, "NVIDIA", "nothing", 7, true); !errors.Is(err, bus.ErrNoJob) {
		t.Errorf("Find(nothing, PR 7) error = %v, want ErrNoJob", err)
	}
}

// The pull request index follows the job: a PR recorded by UpdateJob is found,
// and an entry left behind by a job whose PR changed finds nothing.
func TestFindPRFollowsUpdates(t *testing.T) {
	_, _, r := bustest.Start(t)
	ctx := context.Background()
	key := bus.JobKey("NVIDIA", "models", 1)
	if _, err := bus.CreateJob(ctx, r.Jobs, &bus.Job{Key: key, Owner: "NVIDIA", Repo: "models", Issue: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := bus.Find(ctx, r.Jobs, "NVIDIA", "models", 5, true); !errors.Is(err, bus.ErrNoJob) {
		t.Fatalf("Find before the PR is recorded: %v, want ErrNoJob", err)
	}
	for _, pr := range []int{5, 6} {
		if _, err := bus.UpdateJob(ctx, r.Jobs, key, func(j *bus.Job) error { j.PR = pr; return nil }); err != nil {
			t.Fatal(err)
		}
		if j, err := bus.Find(ctx, r.Jobs, "NVIDIA", "models", pr, true); err != nil || j.Key != key {
			t.Fatalf("Find(PR %d) = %+v, %v", pr, j, err)
		}
	}
	if _, err := bus.Find(ctx, r.Jobs, "NVIDIA", "models", 5, true); !errors.Is(err, bus.ErrNoJob) {
		t.Fatalf("Find(old PR 5) = %v, want ErrNoJob", err)
	}
}
