package bus_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/bus/bustest"
)

func TestJobKeyRoundTrip(t *testing.T) {
	tests := []struct {
		owner, repo string
		issue       int
	}{
		{"NVIDIA", "TensorRT-LLM", 42},
		{"a", "repo.with.dots", 1},
		{"o-x", "r_y", 999999},
		{"NVIDIA", ".github", 3},
		{"o", "trailing.", 4},
		{"o", "two..dots", 5},
	}
	for _, tc := range tests {
		key := bus.JobKey(tc.owner, tc.repo, tc.issue)
		o, r, i, err := bus.ParseJobKey(key)
		if err != nil || o != tc.owner || r != tc.repo || i != tc.issue {
			t.Errorf("ParseJobKey(%q) = %q, %q, %d, %v", key, o, r, i, err)
		}
	}
	for _, bad := range []string{"", "a", "a.b", ".b.1", "a.b.x", "a.b.0", "a..1"} {
		if _, _, _, err := bus.ParseJobKey(bad); err == nil {
			t.Errorf("ParseJobKey(%q) succeeded, want error", bad)
		}
	}
}

// A repository named ".github" (or with two dots in a row) once made a
// key with an empty token, which the bucket refuses: every job look-up on
// its issues failed, and every remark there was answered 503.
func TestJobKeyOfDottedRepoIsUsable(t *testing.T) {
	_, _, r := bustest.Start(t)
	ctx := context.Background()
	for _, repo := range []string{".github", "two..dots", "a.b"} {
		key := bus.JobKey("NVIDIA", repo, 1)
		if _, err := bus.CreateJob(ctx, r.Jobs, &bus.Job{Key: key, Owner: "NVIDIA", Repo: repo, Issue: 1}); err != nil {
			t.Fatalf("CreateJob(%q): %v", key, err)
		}
		j, _, err := bus.GetJob(ctx, r.Jobs, key)
		if err != nil || j.Repo != repo {
			t.Fatalf("GetJob(%q) = %+v, %v", key, j, err)
		}
	}
	if got, want := bus.JobKey("o", "a.b", 1), "o.a.b.1"; got != want {
		t.Errorf("JobKey of a plain dotted name = %q, want it unchanged: %q", got, want)
	}
}

func TestFitGPUs(t *testing.T) {
	for n, want := range map[int]int{1: 1, 2: 2, 3: 4, 4: 4, 5: 8, 8: 8, 9: 0} {
		if got := bus.FitGPUs(n); got != want {
			t.Errorf("FitGPUs(%d) = %d, want %d", n, got, want)
		}
	}
}

func TestEnsureIdempotent(t *testing.T) {
	_, nc, _ := bustest.Start(t)
	js, _ := jetstream.New(nc)
	if _, err := bus.Ensure(context.Background(), js, bus.Options{}); err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
}

func TestUpdateJobConcurrent(t *testing.T) {
	_, _, r := bustest.Start(t)
	ctx := context.Background()
	key := bus.JobKey("o", "r", 1)
	if _, err := bus.CreateJob(ctx, r.Jobs, &bus.Job{Key: key, Status: bus.StatusQueued}); err != nil {
		t.Fatal(err)
	}
	if _, err := bus.CreateJob(ctx, r.Jobs, &bus.Job{Key: key}); !errors.Is(err, jetstream.ErrKeyExists) {
		t.Fatalf("second CreateJob error = %v, want ErrKeyExists", err)
	}
	const writers = 8
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			_, err := bus.UpdateJob(ctx, r.Jobs, key, func(j *bus.Job) error {
				j.PendingFeedback = append(j.PendingFeedback, bus.Feedback{ID: int64(w), Body: fmt.Sprint(w)})
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	j, _, err := bus.GetJob(ctx, r.Jobs, key)
	if err != nil {
		t.Fatal(err)
	}
	if len(j.PendingFeedback) != writers {
		t.Fatalf("pending feedback has %d entries, want %d: a concurrent update was lost", len(j.PendingFeedback), writers)
	}
	got, err := bus.UpdateJob(ctx, r.Jobs, key, func(*bus.Job) error { return bus.ErrUnchanged })
	if err != nil || len(got.PendingFeedback) != writers {
		t.Fatalf("ErrUnchanged update = %v, %v", got, err)
	}
	if _, err := bus.UpdateJob(ctx, r.Jobs, "o.r.2", func(*bus.Job) error { return nil }); !errors.Is(err, bus.ErrNoJob) {
		t.Fatalf("update of missing job error = %v, want ErrNoJob", err)
	}
}

func TestCycleDeduplicated(t *testing.T) {
	_, _, r := bustest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := bus.Cycle{JobKey: "o.r.1", Number: 1, GPUs: 2}
	for range 3 {
		if _, err := r.JS.Publish(ctx, bus.CycleSubject(c.GPUs), []byte("{}"), jetstream.WithMsgID(c.MsgID())); err != nil {
			t.Fatal(err)
		}
	}
	info, err := r.Cycles.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("stream holds %d messages after 3 publishes with one id, want 1", info.State.Msgs)
	}
}

func TestDeliveryKey(t *testing.T) {
	long := strings.Repeat("a", 4100)
	tests := []struct{ id, want string }{
		{"f73f08d0-a995-11f0-8d11-0b9d0ae424e4", "delivery.f73f08d0-a995-11f0-8d11-0b9d0ae424e4"},
		{"bench-7", "delivery.bench-7"},
		{"a.b/c*d>", "delivery." + bus.Token("a.b/c*d>", false)},
		{long, "delivery." + bus.Token(long, false)},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(bus.DeliveryKey(tc.id), tc.want); diff != "" {
			t.Errorf("DeliveryKey(%.20q) (-got +want):\n%s", tc.id, diff)
		}
	}
}

// A key made from a webhook's values once went into a NATS request subject
// as it was: 4,100 bytes of delivery id or 5,000 of repository name dropped
// the connection, and a space or '*' made another subject.
func TestTokenBoundsHostileValues(t *testing.T) {
	tests := []struct {
		name string
		in   string
		dots bool
		kept bool
	}{
		{"guid", "f73f08d0-a995-11f0-8d11-0b9d0ae424e4", false, true},
		{"dotted repo", "models.v2", true, true},
		{"dot in owner", "a.b", false, false},
		{"empty", "", false, false},
		{"4100 bytes", strings.Repeat("x", 4100), false, false},
		{"5000 runes", strings.Repeat("é", 5000), true, false},
		{"wildcards", "a*b>c", false, false},
		{"space", "a b", true, false},
		{"equals", "=h0", false, false},
		{"at the bound", strings.Repeat("r", bus.MaxTokenLen), true, true},
		{"past the bound", strings.Repeat("r", bus.MaxTokenLen+1), true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := bus.Token(tc.in, tc.dots)
			if diff := cmp.Diff(got == tc.in, tc.kept); diff != "" {
				t.Errorf("Token kept the value (-got +want):\n%s", diff)
			}
			if len(got) > bus.MaxTokenLen || got == "" || strings.ContainsAny(got, " *>\t\r\n") {
				t.Errorf("Token(%.20q) = %q: not a bounded subject token", tc.in, got)
			}
			if got != bus.Token(tc.in, tc.dots) {
				t.Error("Token is not deterministic")
			}
		})
	}
	if bus.Token("a*b", false) == bus.Token("a*c", false) {
		t.Error("two values share a digest")
	}
}

// Keys made from hostile names are usable in the bucket: the job is stored
// and read back, and its key is no longer than the bound.
func TestJobKeyOfHostileNames(t *testing.T) {
	_, _, r := bustest.Start(t)
	ctx := context.Background()
	for _, tc := range []struct{ owner, repo string }{
		{"NVIDIA", strings.Repeat("r", 5000)},
		{strings.Repeat("o", 4100), "repo"},
		{"a b", "c*d>e"},
		{"", ""},
	} {
		key := bus.JobKey(tc.owner, tc.repo, 1)
		if len(key) > bus.MaxJobKeyLen || !bus.ValidJobKey(key) {
			t.Fatalf("JobKey(%.20q, %.20q) = %q: not a valid bounded key", tc.owner, tc.repo, key)
		}
		if _, err := bus.CreateJob(ctx, r.Jobs, &bus.Job{Key: key, Owner: tc.owner, Repo: tc.repo, Issue: 1}); err != nil {
			t.Fatalf("CreateJob(%q): %v", key, err)
		}
		j, err := bus.Find(ctx, r.Jobs, tc.owner, tc.repo, 1, false)
		if err != nil || j.Repo != tc.repo {
			t.Fatalf("Find = %v", err)
		}
	}
	for _, bad := range []string{strings.Repeat("a", 5000) + ".b.1", "a b.c.1", "a.b*.1", "a..1"} {
		if bus.ValidJobKey(bad) {
			t.Errorf("ValidJobKey(%.30q) = true, want false", bad)
		}
	}
}
