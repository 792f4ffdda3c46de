package runners

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/rs/zerolog"

	"github.com/nvidia/adbot/internal/gpu"
	"github.com/nvidia/adbot/onboarding/workflow"
	"github.com/nvidia/adbot/runners/admission"
)

// Command returns `adbot runner`, running the workflow newWorkflow makes
// in its cycles.
func Command(newWorkflow func() (Workflow, error)) func(ctx context.Context, args []string) error {
	return func(ctx context.Context, args []string) error {
		wf, err := newWorkflow()
		if err != nil {
			return err
		}
		return command(ctx, args, os.Stdout, os.Stderr, Deps{NVML: nvml.New(), Workflow: wf})
	}
}

// command is Command with its outputs and dependencies given (tests).
func command(ctx context.Context, args []string, stdout, stderr io.Writer, deps Deps) error {
	fs := flag.NewFlagSet("adbot runner", flag.ContinueOnError)
	fs.SetOutput(stderr)
	force := fs.Bool("force", false, "on the first SIGTERM or interrupt, stop running cycles at once and give them back (default: finish them first)")
	inventory := fs.Bool("inventory", false, "print the GPU inventory and the admission decision as JSON, then exit")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: adbot runner [--force] [--inventory]

Runs a GPU runner: it dials out to NATS (NATS_URL, NATS_CREDS), takes cycles
that fit its free GPUs, runs them in git worktrees of a TensorRT-LLM mirror,
and reports to GitHub with tokens the server grants it per job.

Signals: the first SIGTERM or interrupt stops taking work and lets running
cycles finish; a second one (or the first, with --force) stops them and gives
them back to the queue for another runner.

Environment: ADBOT_RUNNER_NAME, NATS_URL, NATS_CREDS, ADBOT_DATA_DIR,
ADBOT_REPO_DIR, ADBOT_TRTLLM_REMOTE (a URL, or a local bare repository's path
or file:// URL), ADBOT_GPUS (auto, none, indices like 0,2,3, or
mock:8xH100-80GB for idle mocked GPUs on a host without any),
ADBOT_DISK_FLOOR_GB, ADBOT_PASS_ENV, GITHUB_V3_API_URL, ADBOT_SANDBOX (bwrap
or off), ADBOT_AGENT_EGRESS, ADBOT_AGENT_ALLOWED_TOOLS,
ADBOT_AGENT_DISALLOWED_TOOLS; and the onboarding workflow's:
`)
		for _, k := range workflow.EnvKeys {
			fmt.Fprintf(stderr, "  %-28s %s\n", k[0], k[1])
		}
		fmt.Fprint(stderr, "\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	cfg, err := ConfigFromEnv()
	if err != nil {
		return err
	}
	if *inventory {
		return printInventory(ctx, stdout, stderr, deps.NVML, cfg.GPUs)
	}

	log := zerolog.New(zerolog.SyncWriter(stderr)).With().Timestamp().Logger()
	ctx = log.WithContext(ctx)
	r, err := New(cfg, deps)
	if err != nil {
		return err
	}

	// Two-stage stop: main's context ends at the first signal (drain); we count
	// signals ourselves to force on the second (or the first with --force).
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan struct{})
	defer close(done)
	go func() {
		n := 0
		for {
			select {
			case <-done:
				return
			case s := <-sigs:
				n++
				if n == 1 && !*force {
					log.Info().Str("signal", s.String()).Msg("stopping: finishing running cycles, taking no new ones")
					stop()
					continue
				}
				log.Warn().Str("signal", s.String()).Msg("stopping now: killing running cycles and giving them back")
				stop()
				r.Force()
			}
		}
	}()
	return r.Run(runCtx)
}

// InventoryReport is what `adbot runner --inventory` prints.
type InventoryReport struct {
	Time      time.Time    `json:"time"`
	Selection string       `json:"selection"`
	NVML      bool         `json:"nvml"`
	Mock      string       `json:"mock,omitempty"` // the spec, when ADBOT_GPUS mocks the GPUs
	Error     string       `json:"error,omitempty"`
	Devices   []gpu.Device `json:"devices"`
	// Busy maps a busy GPU's index to why.
	Busy map[int]string `json:"busy,omitempty"`
	Free []int          `json:"free"`
	// Admits lists the cycle sizes (GPU counts) this host would take now.
	Admits []int `json:"admits"`
	// Assign shows the GPUs the largest admitted cycle would get.
	Assign []int `json:"assign,omitempty"`
}

func printInventory(ctx context.Context, w, stderr io.Writer, lib nvml.Interface, sel gpu.Selection) error {
	rep := InventoryReport{Time: time.Now().UTC(), Selection: sel.String(), NVML: true, Free: []int{}, Admits: []int{}, Devices: []gpu.Device{}}
	h, err := gpu.Open(lib, sel)
	if errors.Is(err, gpu.ErrNoNVML) {
		rep.NVML, rep.Error = false, err.Error()
	} else if err != nil {
		return err
	} else {
		defer h.Close()
		if rep.Mock = h.Mocked(); rep.Mock != "" {
			fmt.Fprintf(stderr, "warning: the GPUs are mocked (%s=%s): nothing can run on them\n", gpu.EnvGPUs, rep.Mock)
		}
		devs, err := h.Inventory(ctx)
		if err != nil {
			return err
		}
		if devs != nil {
			rep.Devices = devs
		}
		var ledger admission.Ledger
		rep.Free = ledger.Available(devs)
		if rep.Free == nil {
			rep.Free = []int{}
		}
		for _, d := range devs {
			if why := d.BusyReason(); why != "" {
				if rep.Busy == nil {
					rep.Busy = map[int]string{}
				}
				rep.Busy[d.Index] = why
			}
		}
		pol := admission.Policy{}
		rep.Admits = pol.Order(time.Now(), len(devs), len(rep.Free), 0, nil)
		if rep.Admits == nil {
			rep.Admits = []int{}
		}
		if len(rep.Admits) > 0 {
			rep.Assign, _ = ledger.Reserve("inventory", rep.Free, rep.Admits[0])
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}
