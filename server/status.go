package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/internal/version"
	"github.com/nvidia/adbot/jobs"
)

// Snapshot is what `adbot status` shows: the jobs, the queue for each GPU
// count and the runners online, read from the same buckets and stream the
// server and the runners use. It changes nothing.
type Snapshot struct {
	// Taken is when the snapshot was read.
	Taken time.Time `json:"taken"`
	// Jobs are the jobs, newest first.
	Jobs []JobRow `json:"jobs"`
	// Queues has one row per GPU count (bus.GPUSizes).
	Queues []QueueRow `json:"queues"`
	// Runners are the runners whose heartbeat is current, by name.
	Runners []RunnerRow `json:"runners"`
}

// JobRow is one job.
type JobRow struct {
	Key    string `json:"key"`
	Model  string `json:"model"`
	Status string `json:"status"`
	// Phase is the last phase done in the current cycle.
	Phase string `json:"phase,omitempty"`
	Cycle int    `json:"cycle"`
	GPUs  int    `json:"gpus"`
	Issue string `json:"issue"`
	// PR is the pull request's URL, "" before there is one.
	PR string `json:"pr,omitempty"`
	// HeadSHA is the pull request head the bot last tested: the only commit
	// an approval counts for.
	HeadSHA string `json:"head_sha,omitempty"`
	Runner  string `json:"runner,omitempty"`
	Note    string `json:"note,omitempty"`
	// AgeSeconds is the time since the job was created.
	AgeSeconds int64     `json:"age_seconds"`
	Created    time.Time `json:"created"`
	Updated    time.Time `json:"updated"`
}

// QueueRow is the queue for one GPU count.
type QueueRow struct {
	GPUs int `json:"gpus"`
	// Waiting counts the jobs whose newest cycle waits for a runner (see jobs.Waiting).
	Waiting int `json:"waiting"`
	// Complete is false when there were more cycles than jobs.MaxQueueScan.
	Complete bool `json:"complete"`
	// OldestWaitSeconds is how long the first waiting cycle has waited (0: none).
	OldestWaitSeconds int64 `json:"oldest_wait_seconds"`
	// Reason says why cycles of this size wait, when they do.
	Reason string `json:"reason,omitempty"`
}

// RunnerRow is one runner online.
type RunnerRow struct {
	Name     string    `json:"name"`
	Version  string    `json:"version"`
	GPUs     int       `json:"gpus"`
	FreeGPUs int       `json:"free_gpus"`
	Draining bool      `json:"draining,omitempty"`
	Seen     time.Time `json:"seen"`
	// Leases are the jobs it holds, with their GPU indices.
	Leases []LeaseRow `json:"leases"`
}

// LeaseRow is one lease a runner holds.
type LeaseRow struct {
	Job     string    `json:"job"`
	Cycle   int       `json:"cycle"`
	GPUs    []int     `json:"gpus"`
	Renewed time.Time `json:"renewed"`
}

// OpenBus binds to the streams and buckets the server created, without
// creating or changing any (a status reader must not).
func OpenBus(ctx context.Context, js jetstream.JetStream) (*bus.Resources, error) {
	r := &bus.Resources{JS: js}
	var err error
	if r.Cycles, err = js.Stream(ctx, bus.CycleStream); err != nil {
		return nil, fmt.Errorf("stream %s (has adbot serve run against this NATS?): %w", bus.CycleStream, err)
	}
	if r.Commands, err = js.Stream(ctx, bus.CommandStream); err != nil {
		return nil, fmt.Errorf("stream %s: %w", bus.CommandStream, err)
	}
	for _, b := range []struct {
		name string
		kv   *jetstream.KeyValue
	}{{bus.JobBucket, &r.Jobs}, {bus.LeaseBucket, &r.Leases}, {bus.RunnerBucket, &r.Runners}} {
		if *b.kv, err = js.KeyValue(ctx, b.name); err != nil {
			return nil, fmt.Errorf("key-value bucket %s: %w", b.name, err)
		}
	}
	return r, nil
}

// ReadSnapshot reads the status. all keeps jobs that ended more than a day
// before now, which are otherwise left out.
func ReadSnapshot(ctx context.Context, r *bus.Resources, now time.Time, all bool) (*Snapshot, error) {
	s := &Snapshot{Taken: now, Jobs: []JobRow{}, Queues: []QueueRow{}, Runners: []RunnerRow{}}
	jobsByKey, err := readAll[bus.Job](ctx, r.Jobs, func(k string) bool { return !strings.HasPrefix(k, "_") })
	if err != nil {
		return nil, err
	}
	for _, j := range jobsByKey {
		if !all && j.Status.Terminal() && now.Sub(j.Updated) > 24*time.Hour {
			continue
		}
		row := JobRow{Key: j.Key, Model: j.ModelID, Status: string(j.Status), Phase: j.Phase, Cycle: j.Cycle, GPUs: j.GPUs,
			Issue:   fmt.Sprintf("https://github.com/%s/%s/issues/%d", j.Owner, j.Repo, j.Issue),
			HeadSHA: j.HeadSHA, Runner: j.Runner, Note: j.Note, AgeSeconds: int64(now.Sub(j.Created) / time.Second), Created: j.Created, Updated: j.Updated}
		if j.PR != 0 {
			row.PR = fmt.Sprintf("https://github.com/%s/%s/pull/%d", j.Owner, j.Repo, j.PR)
		}
		s.Jobs = append(s.Jobs, row)
	}
	slices.SortFunc(s.Jobs, func(a, b JobRow) int { return b.Created.Compare(a.Created) })

	fleet, err := readAll[bus.Presence](ctx, r.Runners, nil)
	if err != nil {
		return nil, err
	}
	leases, err := readAll[bus.Lease](ctx, r.Leases, nil)
	if err != nil {
		return nil, err
	}
	var presences []bus.Presence
	for _, p := range fleet {
		presences = append(presences, p)
		row := RunnerRow{Name: p.Name, Version: p.Version, GPUs: p.GPUs, FreeGPUs: p.FreeGPUs, Draining: p.Draining, Seen: p.Seen, Leases: []LeaseRow{}}
		for job, l := range leases {
			if l.Runner == p.Name {
				row.Leases = append(row.Leases, LeaseRow{Job: job, Cycle: l.Cycle, GPUs: l.GPUs, Renewed: l.Renewed})
			}
		}
		slices.SortFunc(row.Leases, func(a, b LeaseRow) int { return strings.Compare(a.Job, b.Job) })
		s.Runners = append(s.Runners, row)
	}
	slices.SortFunc(s.Runners, func(a, b RunnerRow) int { return strings.Compare(a.Name, b.Name) })

	for _, n := range bus.GPUSizes {
		wl, err := jobs.Waiting(ctx, r, n)
		if err != nil {
			return nil, fmt.Errorf("queue for %d GPUs: %w", n, err)
		}
		q := QueueRow{GPUs: n, Waiting: len(wl.Jobs), Complete: wl.Complete}
		if len(wl.Jobs) > 0 {
			if e := wl.Jobs[0].Enqueued; !e.IsZero() {
				q.OldestWaitSeconds = int64(now.Sub(e) / time.Second)
			}
			q.Reason = bus.WaitReason(n, presences)
		}
		s.Queues = append(s.Queues, q)
	}
	return s, nil
}

// readAll reads every entry of kv whose key keep accepts (nil: all) as JSON
// of T; entries that do not decode are skipped.
func readAll[T any](ctx context.Context, kv jetstream.KeyValue, keep func(string) bool) (map[string]T, error) {
	out := map[string]T{}
	lister, err := kv.ListKeys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", kv.Bucket(), err)
	}
	var keys []string
	for k := range lister.Keys() {
		if keep == nil || keep(k) {
			keys = append(keys, k)
		}
	}
	_ = lister.Stop()
	for _, k := range keys {
		e, err := kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("get %s %s: %w", kv.Bucket(), k, err)
		}
		var v T
		if json.Unmarshal(e.Value(), &v) == nil {
			out[k] = v
		}
	}
	return out, nil
}

// WriteText prints the snapshot for a person: three tables.
func (s *Snapshot) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "JOBS (%d)\n", len(s.Jobs))
	if len(s.Jobs) > 0 {
		fmt.Fprintln(tw, "  MODEL\tSTATUS\tPHASE\tGPUS\tPR\tRUNNER\tAGE\tISSUE")
	}
	for _, j := range s.Jobs {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", j.Model, j.Status, dash(j.Phase), j.GPUs, dash(j.PR), dash(j.Runner),
			age(time.Duration(j.AgeSeconds)*time.Second), j.Issue)
	}
	fmt.Fprintln(tw, "\nQUEUE")
	fmt.Fprintln(tw, "  GPUS\tWAITING\tOLDEST WAIT\tWHY")
	for _, q := range s.Queues {
		n := strconv.Itoa(q.Waiting)
		if !q.Complete {
			n += "+"
		}
		wait := "-"
		if q.Waiting > 0 {
			wait = age(time.Duration(q.OldestWaitSeconds) * time.Second)
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\n", q.GPUs, n, wait, dash(q.Reason))
	}
	fmt.Fprintf(tw, "\nRUNNERS (%d online)\n", len(s.Runners))
	if len(s.Runners) > 0 {
		fmt.Fprintln(tw, "  NAME\tGPUS\tFREE\tLEASES\tSEEN\tVERSION")
	}
	for _, r := range s.Runners {
		var ls []string
		for _, l := range r.Leases {
			ls = append(ls, fmt.Sprintf("%s#%d on GPU %s", l.Job, l.Cycle, ints(l.GPUs)))
		}
		name := r.Name
		if r.Draining {
			name += " (draining)"
		}
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%s\t%s ago\t%s\n", name, r.GPUs, r.FreeGPUs, dash(strings.Join(ls, "; ")), age(s.Taken.Sub(r.Seen)), r.Version)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func ints(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

// age shows a duration in its largest unit or two: 45s, 3m10s, 2h5m, 3d4h.
func age(d time.Duration) string {
	d = max(d, 0).Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}

// statusNATSURL is where `adbot status` connects: NATS_URL, else the
// embedded server of a local adbot serve (its host, loopback for "every
// interface", and port).
func statusNATSURL(c Config) string {
	if c.NATS.URL != "" {
		return c.NATS.URL
	}
	host := c.NATS.Embedded.Host
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "nats://" + net.JoinHostPort(host, strconv.Itoa(c.NATS.Embedded.Port))
}

// StatusCommand runs `adbot status [--json] [--all] [--config FILE]`.
func StatusCommand(ctx context.Context, args []string) error {
	fs := newFlagSet("status", "adbot status [--json] [--all] [--config FILE]\n\nShows the jobs (model, status, phase, PR, runner, age), the queue and its wait for each GPU\ncount, and the runners online with their GPUs and leases, read from the NATS JetStream\nbuckets and stream adbot serve uses (NATS_URL and NATS_CREDS, or the embedded server at\nADBOT_NATS_HOST:ADBOT_NATS_PORT with ADBOT_NATS_TOKEN). It changes nothing.")
	path := fs.String("config", "", "YAML configuration `file` (optional), as adbot serve reads it")
	asJSON := fs.Bool("json", false, "print one JSON object")
	all := fs.Bool("all", false, "also list jobs that ended more than a day ago")
	timeout := fs.Duration("timeout", 10*time.Second, "give up after this `duration`")
	cfg, err := parseConfig(fs, path, args)
	if err != nil {
		return err
	}
	snap, err := statusSnapshot(ctx, cfg, *all, *timeout)
	if err != nil {
		if *asJSON {
			enc := json.NewEncoder(os.Stdout)
			_ = enc.Encode(map[string]string{"error": err.Error()})
		}
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(snap)
	}
	return snap.WriteText(os.Stdout)
}

func statusSnapshot(ctx context.Context, cfg Config, all bool, timeout time.Duration) (*Snapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	url := statusNATSURL(cfg)
	opts := []nats.Option{nats.Name("adbot-status " + version.String()), nats.Timeout(timeout)}
	if cfg.NATS.Creds != "" {
		opts = append(opts, nats.UserCredentials(cfg.NATS.Creds))
	}
	if cfg.NATS.URL == "" && cfg.NATS.Embedded.Token != "" {
		opts = append(opts, nats.Token(cfg.NATS.Embedded.Token))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats %s: %w", redactURL(url), err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	r, err := OpenBus(ctx, js)
	if err != nil {
		return nil, err
	}
	return ReadSnapshot(ctx, r, time.Now().UTC(), all)
}
