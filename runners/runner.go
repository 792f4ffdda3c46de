// Package runners is the GPU runner daemon: JetStream consumers, GPU inventory and
// admission, leases and heartbeats, workspaces, process execution and reporting to GitHub.
//
// A Runner dials out to NATS (it listens on no port), looks every
// AdmitInterval at its free GPUs (NVML, read again each time), and pulls from
// the cycle subjects whose GPU count fits, largest first, running cycles side
// by side until the GPUs are spoken for. Each cycle holds the job's lease
// (renewed while it works), keeps its message alive with InProgress, works in
// its own git worktree, records each phase in the job before the next begins,
// and reports to GitHub with idempotency keys kept in the job record; a cycle
// another runner takes over resumes from the last recorded phase.
//
// What a cycle does is a Workflow: main.go gives the onboarding workflow
// (onboarding/workflow, adapted by Onboarding).
package runners

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/internal/gpu"
	"github.com/nvidia/adbot/internal/version"
	"github.com/nvidia/adbot/runners/admission"
	"github.com/nvidia/adbot/runners/workspace"
)

// Deps are what a Runner uses that a test or an embedding program may supply.
type Deps struct {
	// Conn is an open NATS connection to use instead of dialing Config.NATSURL.
	// The Runner does not close it.
	Conn *nats.Conn
	// NVML is the GPU library (nvml.New() when nil; a mock server in tests).
	// A mock Config.GPUs (ADBOT_GPUS=mock:...) replaces it.
	NVML nvml.Interface
	// Workflow is what a cycle does (required).
	Workflow Workflow
	// HTTP is the client for GitHub's API (one with a 30 s timeout when nil).
	HTTP *http.Client
	// Policy chooses which subject to pull from (largest fitting first when nil).
	Policy *admission.Policy
	// Metrics registers the runner's counters (none registered when nil:
	// they still count).
	Metrics prometheus.Registerer
}

// Runner is one GPU host's runner daemon.
type Runner struct {
	cfg    Config
	deps   Deps
	policy *admission.Policy
	ledger admission.Ledger
	mirror *workspace.Mirror

	nc   *nats.Conn
	res  *bus.Resources
	host *gpu.Host

	leaseTTL time.Duration

	mu       sync.Mutex
	running  map[string]*Cycle // by job key
	draining bool
	capacity int
	free     int
	noNVML   bool
	lowDisk  string
	notReady string // why the mirror is not ready ("" once it is)
	pace     *pacer

	metrics  *runnerMetrics
	wake     chan struct{}
	forceCtx context.Context
	force    context.CancelFunc
	cycles   sync.WaitGroup
}

// New checks cfg and returns a Runner; Run connects and works.
func New(cfg Config, deps Deps) (*Runner, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if deps.Workflow == nil {
		return nil, errors.New("runner: no workflow given")
	}
	if deps.HTTP == nil {
		deps.HTTP = &http.Client{Timeout: 30 * time.Second}
	}
	pol := deps.Policy
	if pol == nil {
		pol = &admission.Policy{}
	}
	r := &Runner{
		cfg:     cfg,
		deps:    deps,
		policy:  pol,
		running: map[string]*Cycle{},
		metrics: newRunnerMetrics(deps.Metrics),
		wake:    make(chan struct{}, 1),
		mirror: &workspace.Mirror{
			Dir:       cfg.RepoDir,
			Remote:    cfg.Remote,
			WorkRoot:  cfg.workRoot(),
			DiskFloor: cfg.DiskFloor,
		},
	}
	r.forceCtx, r.force = context.WithCancel(context.Background())
	return r, nil
}

// Name is the runner's name.
func (r *Runner) Name() string { return r.cfg.Name }

// Force stops every running cycle now: their processes are killed and their
// messages given back (nak) for another runner at once. Run then returns.
func (r *Runner) Force() { r.force() }

// Run works until ctx is done (call it once), then drains: it takes no new cycle, lets the
// running ones finish (or, after Force, stops them), withdraws its presence
// and returns.
func (r *Runner) Run(ctx context.Context) error {
	log := zerolog.Ctx(ctx).With().Str(LogKeyRunner, r.cfg.Name).Logger()
	ctx = log.WithContext(ctx)
	// Cycles outlive a graceful stop; only Force ends them early.
	cycleBase := log.WithContext(r.forceCtx)

	// A stop asked for during start-up (which kills the git clone or fetch
	// under way) is no failure.
	stopped := func(err error) error {
		if ctx.Err() != nil {
			log.Info().Err(err).Msg("stopped while starting")
			return nil
		}
		return err
	}
	if err := r.connect(ctx); err != nil {
		return stopped(err)
	}
	defer func() {
		if r.deps.Conn == nil && r.nc != nil {
			r.nc.Close()
		}
	}()
	if err := r.openGPUs(ctx); err != nil {
		return stopped(err)
	}
	defer r.host.Close()

	// The heartbeat lives until every cycle has ended. It starts before the
	// mirror is ready, so that the runner's presence says why it takes no
	// work while its clone is retried.
	hbCtx, hbStop := context.WithCancel(context.WithoutCancel(ctx))
	var hb sync.WaitGroup
	hb.Add(1)
	go func() { defer hb.Done(); r.heartbeat(hbCtx) }()

	if err := r.prepareMirror(ctx); err != nil {
		log.Info().Err(err).Msg("stopped while starting")
	} else {
		// One checkout ready before the first job, so that it too only
		// switches branches (see docs/BENCHMARKS.md, "Runner").
		if err := r.mirror.Prewarm(ctx, 1); err != nil {
			log.Warn().Err(err).Msg("prewarm a worktree")
		}
		log.Info().Int("gpus", r.capacity).Str("data_dir", r.cfg.DataDir).Str("remote", workspace.DisplayRemote(r.cfg.Remote)).Msg("runner started")
		r.admitLoop(ctx, cycleBase)
	}

	r.mu.Lock()
	r.draining = true
	n := len(r.running)
	r.mu.Unlock()
	if n > 0 {
		log.Info().Int("cycles", n).Msg("draining: finishing running cycles, taking no new ones (signal again to stop them now)")
	}
	r.publishPresence(context.WithoutCancel(ctx))
	r.cycles.Wait()
	hbStop()
	hb.Wait()
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := r.res.Runners.Delete(dctx, r.cfg.Name); err != nil {
		log.Warn().Err(err).Msg("withdraw presence")
	}
	log.Info().Msg("runner stopped")
	return nil
}

func (r *Runner) connect(ctx context.Context) error {
	r.nc = r.deps.Conn
	if r.nc == nil {
		opts := []nats.Option{nats.Name("adbot runner " + r.cfg.Name), nats.MaxReconnects(-1)}
		if r.cfg.NATSCreds != "" {
			opts = append(opts, nats.UserCredentials(r.cfg.NATSCreds))
		}
		url := r.cfg.NATSURL
		if url == "" {
			url = nats.DefaultURL
		}
		nc, err := nats.Connect(url, opts...)
		if err != nil {
			return fmt.Errorf("connect to NATS at %s: %w", url, err)
		}
		r.nc = nc
	}
	js, err := jetstream.New(r.nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	r.res, err = bind(ctx, js)
	if err != nil {
		return err
	}
	st, err := r.res.Leases.Status(ctx)
	if err != nil {
		return fmt.Errorf("read lease bucket: %w", err)
	}
	r.leaseTTL = st.TTL()
	if r.leaseTTL <= 0 {
		r.leaseTTL = bus.LeaseTTL
	}
	return nil
}

// prepareMirror clones or fetches the mirror until it succeeds or ctx ends
// (its error then). A failure is logged with what to set, the runner's
// presence says it takes no work and why, and the next try comes after
// Config.MirrorRetry, doubling up to Config.MirrorRetryMax.
func (r *Runner) prepareMirror(ctx context.Context) error {
	wait := r.cfg.MirrorRetry
	for {
		err := r.mirror.Ensure(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil {
			r.setNotReady("")
			return nil
		}
		err = mirrorError(err, r.cfg)
		r.setNotReady(err.Error())
		r.publishPresence(ctx)
		zerolog.Ctx(ctx).Error().Err(err).Str("retry_in", wait.String()).Msg("TensorRT-LLM mirror not ready: taking no work until it is")
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-r.forceCtx.Done():
			t.Stop()
			return r.forceCtx.Err()
		case <-t.C:
		}
		wait = min(2*wait, r.cfg.MirrorRetryMax)
	}
}

// mirrorError says what to set when the mirror cannot be made.
func mirrorError(err error, cfg Config) error {
	switch {
	case errors.Is(err, workspace.ErrClone):
		return fmt.Errorf("prepare mirror: %w; set ADBOT_TRTLLM_REMOTE to a TensorRT-LLM repository this host can reach (a URL, or the path or file:// URL of a local bare clone), or ADBOT_REPO_DIR to an existing mirror", err)
	case errors.Is(err, workspace.ErrForeignConfig):
		return fmt.Errorf("prepare mirror: %w; the mirror at %s was made from another remote than %s or altered since: remove it, or set ADBOT_REPO_DIR to another folder", err, cfg.RepoDir, workspace.DisplayRemote(cfg.Remote))
	}
	return fmt.Errorf("prepare mirror %s of %s: %w", cfg.RepoDir, workspace.DisplayRemote(cfg.Remote), err)
}

// maxReason bounds the reason a presence entry gives (git's messages can be long).
const maxReason = 500

func (r *Runner) setNotReady(why string) {
	if n := []rune(why); len(n) > maxReason {
		why = string(n[:maxReason-1]) + "…"
	}
	r.mu.Lock()
	r.notReady = why
	r.mu.Unlock()
}

// bind finds the resources the server made; on a bus nobody has set up yet
// (a runner started first) it makes them.
func bind(ctx context.Context, js jetstream.JetStream) (*bus.Resources, error) {
	r := &bus.Resources{JS: js}
	var err error
	if r.Cycles, err = js.Stream(ctx, bus.CycleStream); errors.Is(err, jetstream.ErrStreamNotFound) {
		return bus.Ensure(ctx, js, bus.Options{})
	} else if err != nil {
		return nil, fmt.Errorf("find stream %s: %w", bus.CycleStream, err)
	}
	for _, b := range []struct {
		name string
		kv   *jetstream.KeyValue
	}{{bus.JobBucket, &r.Jobs}, {bus.LeaseBucket, &r.Leases}, {bus.RunnerBucket, &r.Runners}} {
		if *b.kv, err = js.KeyValue(ctx, b.name); err != nil {
			return nil, fmt.Errorf("find key-value bucket %s: %w", b.name, err)
		}
	}
	if r.Logs, err = js.ObjectStore(ctx, bus.LogStore); err != nil {
		return nil, fmt.Errorf("find object store %s: %w", bus.LogStore, err)
	}
	return r, nil
}

func (r *Runner) openGPUs(ctx context.Context) error {
	lib := r.deps.NVML
	if lib == nil {
		lib = nvml.New()
	}
	h, err := gpu.Open(lib, r.cfg.GPUs)
	if err == nil && h.Mocked() != "" {
		gpu.WarnMocked(ctx, h.Mocked())
	}
	if errors.Is(err, gpu.ErrNoNVML) {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("no NVIDIA GPUs on this host: running with none; only cycles needing no GPU could run, and there are none (ADBOT_GPUS=mock:8xH100-80GB mocks GPUs to watch a cycle)")
		r.noNVML = true
		h, err = gpu.Open(lib, gpu.Selection{None: true})
	}
	if err != nil {
		return fmt.Errorf("open GPUs: %w", err)
	}
	r.host = h
	devs, err := h.Inventory(ctx)
	if err != nil {
		h.Close()
		return fmt.Errorf("read GPUs: %w", err)
	}
	r.mu.Lock()
	r.capacity = len(devs)
	r.free = len(r.ledger.Available(devs))
	r.mu.Unlock()
	for _, d := range devs {
		zerolog.Ctx(ctx).Info().Int(LogKeyGPU, d.Index).Str("name", d.Name).Str("uuid", d.UUID).
			Str("used", gpu.Bytes(d.MemUsed)).Bool("free", d.Free()).Str("busy", d.BusyReason()).Msg("GPU")
	}
	return nil
}

// admitLoop takes cycles until ctx is done.
func (r *Runner) admitLoop(ctx, cycleBase context.Context) {
	t := time.NewTicker(r.cfg.AdmitInterval)
	defer t.Stop()
	for {
		for r.admitOne(ctx, cycleBase) {
			// took one: look again at once, more may fit
		}
		select {
		case <-ctx.Done():
			return
		case <-r.forceCtx.Done():
			return
		case <-t.C:
		case <-r.wake:
		}
	}
}

// admitOne reads the GPUs, and takes at most one cycle that fits. It reports
// whether it took one.
func (r *Runner) admitOne(ctx, cycleBase context.Context) bool {
	log := zerolog.Ctx(ctx)
	if ctx.Err() != nil {
		return false
	}
	devs, err := r.host.Inventory(ctx)
	if err != nil {
		log.Error().Err(err).Msg("read GPUs")
		return false
	}
	avail := r.ledger.Available(devs)
	r.mu.Lock()
	r.free = len(avail)
	running := len(r.running)
	r.mu.Unlock()
	if len(avail) == 0 {
		return false
	}
	if err := r.mirror.CheckDisk(); err != nil {
		r.mu.Lock()
		first := r.lowDisk == ""
		r.lowDisk = err.Error()
		r.mu.Unlock()
		if first {
			log.Error().Err(err).Msg("taking no new work until disk is freed")
		}
		return false
	} else {
		r.mu.Lock()
		if r.lowDisk != "" {
			log.Info().Msg("disk above the floor again: taking work")
		}
		r.lowDisk = ""
		r.mu.Unlock()
	}
	pending, err := r.pending(ctx)
	if err != nil {
		log.Warn().Err(err).Msg("read queue depths")
		pending = nil
	}
	for _, size := range r.policy.Order(time.Now(), len(devs), len(avail), running, pending) {
		cons, err := r.res.Cycles.Consumer(ctx, bus.ConsumerName(size))
		if err != nil {
			log.Error().Err(err).Int("size", size).Msg("find consumer")
			continue
		}
		batch, err := cons.FetchNoWait(1)
		if err != nil {
			log.Warn().Err(err).Int("size", size).Msg("fetch cycle")
			continue
		}
		var msg jetstream.Msg
		for m := range batch.Messages() {
			msg = m
		}
		if msg == nil {
			continue
		}
		ackWait := bus.AckWait
		if ci := cons.CachedInfo(); ci != nil && ci.Config.AckWait > 0 {
			ackWait = ci.Config.AckWait
		}
		r.start(ctx, cycleBase, msg, size, avail, ackWait)
		return true
	}
	return false
}

// pending counts the cycles waiting on each subject: not yet delivered, or
// given back for redelivery.
func (r *Runner) pending(ctx context.Context) (map[int]int, error) {
	out := map[int]int{}
	for _, s := range bus.GPUSizes {
		cons, err := r.res.Cycles.Consumer(ctx, bus.ConsumerName(s))
		if err != nil {
			return nil, fmt.Errorf("consumer %s: %w", bus.ConsumerName(s), err)
		}
		info, err := cons.Info(ctx)
		if err != nil {
			return nil, fmt.Errorf("consumer %s: %w", bus.ConsumerName(s), err)
		}
		out[s] = int(info.NumPending) + info.NumRedelivered
	}
	return out, nil
}

// heartbeat publishes the runner's presence every PresenceTTL/3.
func (r *Runner) heartbeat(ctx context.Context) {
	t := time.NewTicker(bus.PresenceTTL / 3)
	defer t.Stop()
	for {
		r.publishPresence(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Presence is what the runner publishes about itself now.
func (r *Runner) Presence() bus.Presence {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := bus.Presence{
		Name:     r.cfg.Name,
		Version:  version.String(),
		GPUs:     r.capacity,
		FreeGPUs: r.free,
		Seen:     time.Now().UTC(),
	}
	switch {
	case r.draining:
		p.Draining, p.Reason = true, "stopping"
	case r.notReady != "":
		p.Draining, p.Reason = true, r.notReady
	case r.lowDisk != "":
		p.Draining, p.Reason = true, r.lowDisk
	}
	for k := range r.running {
		p.Running = append(p.Running, k)
	}
	return p
}

func (r *Runner) publishPresence(ctx context.Context) {
	b, err := json.Marshal(r.Presence())
	if err != nil {
		return
	}
	if _, err := r.res.Runners.Put(ctx, r.cfg.Name, b); err != nil && ctx.Err() == nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("publish presence")
	}
}

func (r *Runner) kick() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// logDir is where a cycle's process logs go.
func (r *Runner) logDir(c bus.Cycle) string {
	return filepath.Join(r.cfg.DataDir, "logs", c.JobKey, fmt.Sprintf("cycle-%d", c.Number))
}
