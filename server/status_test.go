package server

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/bus/bustest"
)

// statusFixture puts three jobs on the bus: one queued for 4 GPUs, one
// running on runner gpu-a with a lease, one cancelled two days ago; and two
// runners online.
func statusFixture(t *testing.T, res *bus.Resources) {
	t.Helper()
	ctx := context.Background()
	mk := func(n, gpus int, model string) string {
		key := bus.JobKey("octo", "models", n)
		if _, err := bus.CreateJob(ctx, res.Jobs, &bus.Job{Key: key, Owner: "octo", Repo: "models", Issue: n, ModelID: model, GPUs: gpus}); err != nil {
			t.Fatal(err)
		}
		if _, err := bus.Enqueue(ctx, res, key, bus.KindOnboard, nil, "", nil); err != nil {
			t.Fatal(err)
		}
		return key
	}
	mk(1, 4, "org/queued")
	running := mk(2, 2, "org/running")
	old := mk(3, 1, "org/old")
	if _, err := bus.UpdateJob(ctx, res.Jobs, running, func(j *bus.Job) error {
		j.Status, j.Runner, j.RunnerGPUs, j.Phase, j.PR = bus.StatusRunning, "gpu-a", []int{0, 1}, "Register", 7
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := bus.UpdateJob(ctx, res.Jobs, old, func(j *bus.Job) error {
		j.Status = bus.StatusCancelled
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	put := func(kv jetstream.KeyValue, key string, v any) {
		t.Helper()
		b, _ := json.Marshal(v)
		if _, err := kv.Put(ctx, key, b); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UTC()
	put(res.Runners, "gpu-a", bus.Presence{Name: "gpu-a", Version: "v1", GPUs: 2, FreeGPUs: 0, Running: []string{running}, Seen: now})
	put(res.Runners, "gpu-b", bus.Presence{Name: "gpu-b", Version: "v1", GPUs: 2, FreeGPUs: 2, Seen: now})
	put(res.Leases, running, bus.Lease{Runner: "gpu-a", Cycle: 1, GPUs: []int{0, 1}, Renewed: now})
}

func TestReadSnapshot(t *testing.T) {
	_, _, res := bustest.Start(t)
	statusFixture(t, res)
	ctx := context.Background()
	// Two days on, the cancelled job is left out unless asked for.
	now := time.Now().UTC().Add(48 * time.Hour)
	for _, tc := range []struct {
		name string
		all  bool
		want []string
	}{
		{"recent", false, []string{"org/running running", "org/queued queued"}},
		{"all", true, []string{"org/old cancelled", "org/running running", "org/queued queued"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ReadSnapshot(ctx, res, now, tc.all)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, j := range s.Jobs {
				got = append(got, j.Model+" "+j.Status)
			}
			// Created within the same instant: compare as sets.
			if diff := cmp.Diff(sorted(got), sorted(tc.want)); diff != "" {
				t.Errorf("jobs (-got +want):\n%s", diff)
			}
		})
	}
	s, err := ReadSnapshot(ctx, res, now, false)
	if err != nil {
		t.Fatal(err)
	}
	var queues []string
	for _, q := range s.Queues {
		queues = append(queues, strings.Join([]string{itoa(q.GPUs), itoa(q.Waiting)}, ":"))
	}
	// The running job's cycle is on the stream but not waiting; the
	// cancelled job's cycle waits for nobody.
	if diff := cmp.Diff(queues, []string{"1:0", "2:0", "4:1", "8:0"}); diff != "" {
		t.Errorf("queues gpus:waiting (-got +want):\n%s", diff)
	}
	if q := s.Queues[2]; !strings.Contains(q.Reason, "waiting for 4 free GPUs") || q.OldestWaitSeconds < 47*3600 {
		t.Errorf("4-GPU queue = %+v, want the wait reason and about two days of wait", q)
	}
	if len(s.Runners) != 2 || s.Runners[0].Name != "gpu-a" || len(s.Runners[0].Leases) != 1 || s.Runners[0].Leases[0].Job != bus.JobKey("octo", "models", 2) || len(s.Runners[1].Leases) != 0 {
		t.Errorf("runners = %+v", s.Runners)
	}
	for _, j := range s.Jobs {
		if j.Model == "org/running" && (j.PR != "https://github.com/octo/models/pull/7" || j.Runner != "gpu-a" || j.Phase != "Register") {
			t.Errorf("running job = %+v", j)
		}
	}
	var text strings.Builder
	if err := s.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"JOBS (2)", "org/running", "https://github.com/octo/models/pull/7", "QUEUE", "RUNNERS (2 online)", "octo.models.2#1 on GPU 0,1"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
}

// TestStatusCommand runs `adbot status --json` against a NATS server the
// bus was set up on, as a maintainer would against a running adbot serve,
// and against one where it was not.
func TestStatusCommand(t *testing.T) {
	ns, _, res := bustest.Start(t)
	statusFixture(t, res)
	t.Setenv("NATS_URL", ns.ClientURL())
	out := captureStdout(t, func() error { return StatusCommand(context.Background(), []string{"--json"}) })
	var s Snapshot
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out)
	}
	if len(s.Jobs) != 3 || len(s.Runners) != 2 || len(s.Queues) != len(bus.GPUSizes) {
		t.Errorf("snapshot = %d jobs, %d runners, %d queues", len(s.Jobs), len(s.Runners), len(s.Queues))
	}
	// A NATS server without adbot's streams: an error, in JSON under --json.
	empty := bustest.Server(t)
	t.Setenv("NATS_URL", empty.ClientURL())
	var err error
	out = captureStdout(t, func() error {
		err = StatusCommand(context.Background(), []string{"--json", "--timeout", "5s"})
		return nil
	})
	var e struct{ Error string }
	if err == nil || json.Unmarshal(out, &e) != nil || !strings.Contains(e.Error, bus.CycleStream) {
		t.Errorf("status without the streams: err %v, output %s", err, out)
	}
}

func captureStdout(t *testing.T, f func() error) []byte {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	done := make(chan []byte)
	go func() {
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		done <- []byte(b.String())
	}()
	ferr := f()
	os.Stdout = stdout
	w.Close()
	out := <-done
	if ferr != nil {
		t.Fatal(ferr)
	}
	return out
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

func TestStatusNATSURL(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"embedded on every interface", nil, "nats://127.0.0.1:4222"},
		{"embedded elsewhere", map[string]string{"ADBOT_NATS_HOST": "10.0.0.5", "ADBOT_NATS_PORT": "4333"}, "nats://10.0.0.5:4333"},
		{"IPv6 any", map[string]string{"ADBOT_NATS_HOST": "::"}, "nats://127.0.0.1:4222"},
		{"external", map[string]string{"NATS_URL": "nats://a:4222,nats://b:4222"}, "nats://a:4222,nats://b:4222"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := LoadConfig("", func(k string) string { return tc.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(statusNATSURL(c), tc.want); diff != "" {
				t.Errorf("URL (-got +want):\n%s", diff)
			}
		})
	}
}
