// Package preflight implements `adbot preflight <model-id>`: the
// onboarding workflow's sizing and survey steps, done exactly and offline
// where possible. It prints the architecture, the parameter count and where
// it came from, bytes per parameter, memory, the GPU count, whether the
// model fits this machine's GPUs (NVML), and with --repo the family's
// registry entries and any custom model code that already covers it.
package preflight

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/nvidia/adbot/internal/gpu"
	"github.com/nvidia/adbot/onboarding/edit/registry"
	"github.com/nvidia/adbot/onboarding/hub"
	"github.com/nvidia/adbot/onboarding/internal/numfmt"
	"github.com/nvidia/adbot/onboarding/sizing"
	"github.com/nvidia/adbot/onboarding/survey"
)

// Command runs `adbot preflight <model-id>`.
func Command(ctx context.Context, args []string) error {
	r := &Runner{
		Stdout:    os.Stdout,
		Stderr:    os.Stderr,
		Getenv:    os.Getenv,
		Inventory: gpu.Inventory,
	}
	return r.Run(ctx, args)
}

// Runner is the command with its surroundings made explicit for tests.
type Runner struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// Inventory reads the GPUs (gpu.Inventory in production).
	Inventory func(context.Context) ([]gpu.Device, error)
	// HTTP is the Hub client's HTTP client (nil: hub's default).
	HTTP *http.Client
}

// Result is what --json prints.
type Result struct {
	ModelID      string `json:"model_id"`
	Revision     string `json:"revision"`
	Architecture string `json:"architecture"`
	ModelType    string `json:"model_type"`
	RemoteCode   bool   `json:"remote_code"`
	// Source says where the metadata came from: "hub", "cache" or "config".
	Source       string `json:"source"`
	SourceDetail string `json:"source_detail,omitempty"`
	sizing.Plan
	// GPUs is this machine's inventory as read through NVML (empty without).
	GPUs   []sizing.GPU   `json:"gpus"`
	Survey *survey.Report `json:"survey,omitempty"`
	// Registered is the model's own active registry entry, when the survey
	// found one: the model is onboarded already.
	Registered *survey.Member `json:"registered,omitempty"`
	// Warnings are things that went wrong without stopping the preflight.
	Warnings []string `json:"warnings,omitempty"`
}

// Run parses args and runs the preflight.
func (r *Runner) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("preflight", flag.ContinueOnError)
	fs.SetOutput(r.Stderr)
	asJSON := fs.Bool("json", false, "print one JSON object")
	repo := fs.String("repo", "", "a TensorRT-LLM checkout to survey: family registry entries, existing custom model code")
	rev := fs.String("revision", "", "model revision (branch, tag or commit; default main)")
	cfgPath := fs.String("config", "", "read the model from this config.json (or its folder) instead of the Hub or the cache")
	offline := fs.Bool("offline", false, "use only the local HuggingFace cache (also HF_HUB_OFFLINE=1)")
	fs.Usage = func() {
		fmt.Fprintf(r.Stderr, "Usage: adbot preflight [flags] <model-id>\n\nSizes a HuggingFace model for AutoDeploy onboarding and checks it against this machine's GPUs.\nReads HF_ENDPOINT, HF_TOKEN, HF_HUB_CACHE / HF_HOME, HF_HUB_OFFLINE.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	// Flags may follow the model id.
	var pos []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(pos) != 1 {
		fs.Usage()
		err := fmt.Errorf("want one model id, got %d arguments", len(pos))
		if *asJSON {
			writeJSONError(r.Stdout, err)
		}
		return err
	}
	id := pos[0]
	if err := hub.ValidateModelID(id); err != nil {
		if *asJSON {
			writeJSONError(r.Stdout, err)
		}
		return err
	}
	if v := r.Getenv("HF_HUB_OFFLINE"); v == "1" || strings.EqualFold(v, "true") {
		*offline = true
	}
	res, err := r.Check(ctx, id, Options{Revision: *rev, ConfigPath: *cfgPath, Offline: *offline, Repo: *repo})
	if err != nil {
		if *asJSON {
			writeJSONError(r.Stdout, err)
		}
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(r.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	return writeText(r.Stdout, res)
}

// Options select the preflight's sources.
type Options struct {
	// Revision of the model (branch, tag or commit; "" is main).
	Revision string
	// ConfigPath reads the model from a config.json (or its folder) instead.
	ConfigPath string
	// Offline uses only the local HuggingFace cache.
	Offline bool
	// Repo is a TensorRT-LLM checkout to survey ("" skips the survey).
	Repo string
}

// Check sizes the model, checks it against the GPUs r.Inventory reads (none
// when nil) and, with o.Repo, surveys the checkout. The server calls it for
// the GPU count of a cycle; the command prints its result.
func (r *Runner) Check(ctx context.Context, id string, o Options) (*Result, error) {
	if err := hub.ValidateModelID(id); err != nil {
		return nil, err
	}
	getenv := r.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	rr := *r
	rr.Getenv = getenv
	return rr.check(ctx, id, o.Revision, o.ConfigPath, o.Offline, o.Repo)
}

func (r *Runner) check(ctx context.Context, id, rev, cfgPath string, offline bool, repo string) (*Result, error) {
	res := &Result{ModelID: id}
	var known []string // family members the Hub lists
	var m *hub.Model
	var cfg []byte
	cfgName := id + " config.json"
	tensorsFrom := ""
	switch {
	case cfgPath != "":
		s, err := hub.ConfigPath(cfgPath, id)
		if err != nil {
			return nil, err
		}
		if m, err = s.Model(); err != nil {
			return nil, err
		}
		if cfg, err = s.Config(); err != nil {
			return nil, err
		}
		res.Source, res.SourceDetail, cfgName, tensorsFrom = "config", s.Dir, cfgPath, "local safetensors headers"
	case offline:
		var err error
		m, cfg, cfgName, err = r.fromCache(id, rev, res)
		if err != nil {
			return nil, err
		}
		tensorsFrom = "local safetensors headers"
	default:
		c := &hub.Client{Endpoint: r.Getenv("HF_ENDPOINT"), Token: r.Getenv("HF_TOKEN"), HTTP: r.HTTP}
		var err error
		m, err = c.Model(ctx, id, rev)
		var he *hub.Error
		switch {
		case errors.As(err, &he):
			return nil, err
		case err != nil:
			// The Hub is unreachable: the cache may still have the model.
			res.Warnings = append(res.Warnings, fmt.Sprintf("HuggingFace Hub unreachable (%v): used the local cache", err))
			var cerr error
			m, cfg, cfgName, cerr = r.fromCache(id, rev, res)
			if cerr != nil {
				return nil, fmt.Errorf("%w; and %v", err, cerr)
			}
			tensorsFrom = "local safetensors headers"
		default:
			res.Source, res.SourceDetail, tensorsFrom = "hub", endpoint(c.Endpoint), "Hub API"
			fileRev := m.SHA
			if fileRev == "" {
				fileRev = rev
			}
			cfg, err = c.File(ctx, id, fileRev, "config.json")
			if err != nil {
				res.Warnings = append(res.Warnings, fmt.Sprintf("no config.json: %v", err))
				cfg = nil
			}
			cfgName = id + "@" + short(fileRev) + " config.json"
			if repo != "" {
				org, _, _ := strings.Cut(id, "/")
				ids, err := c.Search(ctx, org, registry.FamilyStem(id), 0)
				if err != nil {
					res.Warnings = append(res.Warnings, fmt.Sprintf("family search on the Hub failed: %v", err))
				}
				for _, x := range ids {
					if x != id && registry.SameFamily(id, x) {
						known = append(known, x)
					}
				}
			}
		}
	}
	res.Revision = m.SHA
	res.Architecture = m.Architecture()
	res.ModelType = m.Config.ModelType
	res.RemoteCode = m.RemoteCode()
	in, err := sizing.FromModel(m, cfgName, cfg, tensorsFrom)
	if err != nil {
		return nil, err
	}
	gpus, gerr := r.gpus(ctx)
	res.GPUs = gpus
	if res.GPUs == nil {
		res.GPUs = []sizing.GPU{}
	}
	res.Plan = sizing.Make(in, gpus)
	if gerr != nil {
		res.Fits = sizing.Fit{Reason: gerr.Error()}
	}
	if repo != "" {
		cc := survey.ConfigClassOf(res.Architecture, m.Config.AutoMap)
		rep, err := survey.Survey(repo, survey.Model{ID: id, Architecture: res.Architecture, ModelType: res.ModelType, ConfigClass: cc}, known)
		if err != nil {
			return nil, err
		}
		res.Survey = rep
		for i, mem := range rep.Members {
			if mem.Status == survey.Registered && mem.Name == id {
				res.Registered = &rep.Members[i]
				break
			}
		}
	}
	return res, nil
}

// ErrorResult is what --json prints instead of a Result when the preflight
// fails: one object, so that a script reading stdout always gets JSON.
type ErrorResult struct {
	Error string `json:"error"`
}

func writeJSONError(w io.Writer, err error) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(ErrorResult{Error: err.Error()})
}

func (r *Runner) fromCache(id, rev string, res *Result) (*hub.Model, []byte, string, error) {
	dir := hub.CacheDir(r.Getenv)
	s, err := hub.CachedSnapshot(dir, id, rev)
	if err != nil {
		return nil, nil, "", err
	}
	m, err := s.Model()
	if err != nil {
		return nil, nil, "", err
	}
	cfg, err := s.Config()
	if err != nil {
		return nil, nil, "", err
	}
	res.Source, res.SourceDetail = "cache", s.Dir
	return m, cfg, s.Dir + "/config.json", nil
}

// gpus reads the inventory; without NVML the error says so and the fit is unknown.
func (r *Runner) gpus(ctx context.Context) ([]sizing.GPU, error) {
	if r.Inventory == nil {
		return nil, errors.New("no GPU inventory")
	}
	devs, err := r.Inventory(ctx)
	if errors.Is(err, gpu.ErrNoNVML) {
		return nil, fmt.Errorf("no NVIDIA GPUs to check against on this machine: %w", err)
	}
	if err != nil {
		return nil, fmt.Errorf("could not read this machine's GPUs: %w", err)
	}
	if len(devs) == 0 {
		return nil, errors.New("this machine has no NVIDIA GPUs (NVML lists none)")
	}
	out := make([]sizing.GPU, len(devs))
	for i, d := range devs {
		out[i] = sizing.GPU{Index: d.Index, Name: d.Name, MemTotal: d.MemTotal, MemFree: d.MemFree}
	}
	return out, nil
}

func endpoint(e string) string {
	if e == "" {
		return hub.DefaultEndpoint
	}
	return e
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

func billions(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	}
	return fmt.Sprintf("%d", n)
}

func writeText(w io.Writer, r *Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, a...)...) }
	rev := r.Revision
	if rev == "" {
		rev = "(no revision)"
	}
	p("Model", "%s @ %s", r.ModelID, rev)
	p("Source", "%s (%s)", r.Source, r.SourceDetail)
	arch := r.Architecture
	if arch == "" {
		arch = "(none listed)"
	}
	p("Architecture", "%s (model_type %s)", arch, r.ModelType)
	if r.RemoteCode {
		p("Remote code", "yes: config.json has an auto_map; a maintainer must /onboard proceed")
	} else {
		p("Remote code", "no")
	}
	if r.ParamsSource == sizing.SourceUnknown {
		p("Parameters", "unknown: %s", r.ParamsDetail)
	} else {
		p("Parameters", "%s (%s; %s)", billions(r.Params), numfmt.Commas(r.Params), r.ParamsDetail)
	}
	switch {
	case r.Estimate != nil && r.ParamsSource == sizing.SourceSafetensors:
		d := float64(r.Estimate.Params-r.Params) / float64(r.Params) * 100
		p("", "config.json estimate %s (%+.1f%%)", billions(r.Estimate.Params), d)
	case r.Estimate == nil && r.EstimateError != "" && r.ParamsSource != sizing.SourceUnknown:
		p("", "no config.json estimate: %s", r.EstimateError)
	}
	if r.Estimate != nil {
		for _, n := range r.Estimate.Notes {
			p("", "%s", n)
		}
	}
	if r.MemoryBytes > 0 {
		p("Bytes/param", "%.3g (%s)", r.BytesPerParam, r.BytesDetail)
		p("Memory", "~%.1f GB of weights", float64(r.MemoryBytes)/1e9)
	} else {
		p("Memory", "unknown")
	}
	if r.WorldSize > 0 {
		p("GPUs needed", "%d", r.WorldSize)
	} else {
		p("GPUs needed", "unknown")
	}
	if r.Note != "" {
		p("", "%s", r.Note)
	}
	for _, g := range r.GPUs {
		p("GPU", "%d %s: %.1f GB total, %.1f GB free", g.Index, g.Name, float64(g.MemTotal)/1e9, float64(g.MemFree)/1e9)
	}
	switch {
	case r.Fits.OK == nil:
		p("Fits", "unknown: %s", r.Fits.Reason)
	case *r.Fits.OK:
		p("Fits", "yes: %s", r.Fits.Reason)
	default:
		p("Fits", "NO: %s", r.Fits.Reason)
	}
	for _, w := range r.Warnings {
		p("Warning", "%s", w)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if s := r.Survey; s != nil {
		fmt.Fprintf(w, "\nFamily %q in %s (%s registry):\n", s.Family, s.Checkout.Registry, s.Checkout.LayoutS)
		var buf strings.Builder
		tw = tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
		for _, m := range s.Members {
			ws := ""
			if m.WorldSize > 0 {
				ws = fmt.Sprintf("%d GPU", m.WorldSize)
			}
			where := ""
			if m.Line > 0 {
				where = fmt.Sprintf("%s:%d", m.Registry, m.Line)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", m.Status, m.Name, ws, where, m.Reason)
		}
		tw.Flush()
		for _, l := range strings.SplitAfter(buf.String(), "\n") {
			io.WriteString(w, strings.TrimRight(l, " \n")+strings.Repeat("\n", strings.Count(l, "\n")))
		}
		if reg := r.Registered; reg != nil {
			gpus := ""
			if reg.WorldSize > 0 {
				gpus = fmt.Sprintf(", %d GPU", reg.WorldSize)
			}
			fmt.Fprintf(w, "\n%s is registered already (%s:%d%s): AutoDeploy runs it today.\n", r.ModelID, reg.Registry, reg.Line, gpus)
		}
		switch {
		case len(s.Code) == 0 && r.Registered != nil:
			fmt.Fprintf(w, "No custom model code covers %s (model_type %s), and its registered entry needs none.\n", r.Architecture, r.ModelType)
		case len(s.Code) == 0:
			fmt.Fprintf(w, "\nNo custom model code covers %s (model_type %s): onboarding may need a new modeling file.\n", r.Architecture, r.ModelType)
		default:
			fmt.Fprintf(w, "\nExisting custom model code:\n")
			for _, c := range s.Code {
				fmt.Fprintf(w, "  %s:%d  %s\n", c.File, c.Line, c.What)
			}
		}
	}
	return nil
}
