package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/nvidia/adbot/onboarding/comments"
	"github.com/nvidia/adbot/onboarding/edit/apply"
	"github.com/nvidia/adbot/onboarding/hub"
	"github.com/nvidia/adbot/onboarding/report"
	"github.com/nvidia/adbot/onboarding/sizing"
	"github.com/nvidia/adbot/onboarding/survey"
)

// DefaultTestsDir is where model unit tests go when the checkout has no
// tests folder of its own (the workflow's path).
const DefaultTestsDir = "tests/unittest/_torch/auto_deploy/unit/singlegpu/models"

func (c *cycle) onboardPhases() []phase {
	return []phase{
		{PhaseGather, c.gather},
		{PhaseSurvey, c.survey},
		{PhaseModel, c.writeModel},
		{PhaseCanonicalOps, c.checkCanonicalOps},
		{PhaseRegister, c.checkRegister},
		{PhaseInputContract, c.checkInputContract},
		{PhaseTests, c.testGate},
		{PhaseReview, c.reviewLoop},
		{PhaseRegistry, c.registry},
		{PhaseE2E, c.endToEnd},
		{PhaseSupportMatrix, c.docs(apply.PartMatrix, "Update the model support matrix for %s")},
		{PhaseCookbook, c.docs(apply.PartCookbook, "Add the AutoDeploy cookbook for %s")},
		{PhaseSummary, c.summary},
		{PhasePR, c.pullRequest},
	}
}

// weightFiles are what gather leaves on the Hub: the workflow downloads the
// model's code and configuration only.
var weightFiles = []string{"*.safetensors", "*.bin", "*.pt", "*.gguf"}

func isWeight(name string) bool {
	for _, p := range weightFiles {
		if ok, _ := path.Match(p, path.Base(name)); ok {
			return true
		}
	}
	return false
}

// gather is Phase 0: the model's metadata and size, the fit on this host's
// GPUs (with the reason), its code files in the HF cache, and whether the
// local transformers knows it.
func (c *cycle) gather(ctx context.Context) error {
	j := c.job
	// The id and the revision become argv entries and cache paths: hold
	// them to their forms here too, whatever wrote the job.
	if err := hub.ValidateModelID(j.ModelID); err != nil {
		return fmt.Errorf("gather: %w", err)
	}
	m, err := c.w.opt.Hub.Model(ctx, j.ModelID, j.Revision)
	if err != nil {
		return Transient(fmt.Errorf("gather: ask the Hub for %s: %w", j.ModelID, err))
	}
	rev := j.Revision
	if rev == "" {
		rev = m.SHA
	}
	if !commitID.MatchString(rev) {
		return fmt.Errorf("gather: revision %q of %s is not a commit id", rev, j.ModelID)
	}
	cfgBytes, err := c.w.opt.Hub.File(ctx, j.ModelID, rev, "config.json")
	if err != nil {
		return Transient(fmt.Errorf("gather: read config.json of %s: %w", j.ModelID, err))
	}
	in, err := sizing.FromModel(m, "config.json", cfgBytes, "Hub API")
	if err != nil {
		return fmt.Errorf("gather: %w", err)
	}
	c.st.ModelType = m.Config.ModelType
	if in.Config != nil && c.st.ModelType == "" {
		c.st.ModelType = in.Config.String("model_type")
	}
	arch := m.Architecture()
	c.st.ConfigClass = survey.ConfigClassOf(arch, m.Config.AutoMap)
	var gpus []sizing.GPU
	for _, g := range c.h.GPUs() {
		gpus = append(gpus, sizing.GPU{Index: g.Index, Name: g.Name, MemTotal: g.MemTotal, MemFree: g.MemFree})
	}
	plan := sizing.Make(in, gpus)
	c.st.WorldSize = max(plan.WorldSize, 1)
	c.st.Gather.Plan = planText(plan)
	c.st.Gather.Fit = plan.Fits.Reason
	if plan.Fits.OK != nil && !*plan.Fits.OK && c.proceeded("fit") == 0 {
		if err := c.save(ctx); err != nil {
			return err
		}
		return &WaitError{For: "fit", Reason: fmt.Sprintf("%s does not fit this runner's GPUs: %s (%s). A maintainer can say `/onboard proceed` to try anyway, or `/onboard cancel`.",
			j.ModelID, plan.Fits.Reason, c.st.Gather.Plan)}
	}
	if err := c.downloadCode(ctx, m, rev); err != nil {
		return err
	}
	c.st.Gather.Transformers = c.transformersHas(ctx)
	return nil
}

func planText(p sizing.Plan) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s parameters (%s)", humanCount(p.Params), p.ParamsSource)
	if p.MemoryBytes > 0 {
		fmt.Fprintf(&b, ", about %.1f GB of weights at %.2g bytes/parameter", float64(p.MemoryBytes)/1e9, p.BytesPerParam)
	}
	if p.WorldSize > 0 {
		fmt.Fprintf(&b, ", %d GPU(s) by the workflow's rule (%s)", p.WorldSize, gpuRule(p.Params))
	}
	if p.Note != "" {
		b.WriteString("; " + p.Note)
	}
	return b.String()
}

// gpuRule says which bracket of the workflow's GPU rule a size falls in.
func gpuRule(params int64) string {
	switch {
	case params <= 0:
		return "size unknown"
	case params < 2e9:
		return "1 GPU under 2B parameters"
	case params <= 15e9:
		return "2 GPUs for 2-15B parameters"
	case params < 20e9:
		return "the rule leaves 15-20B open: 4 GPUs"
	case params < 80e9:
		return "4 GPUs for 20-80B parameters"
	default:
		return "8 GPUs from 80B parameters"
	}
}

func humanCount(n int64) string {
	switch {
	case n <= 0:
		return "unknown"
	case n >= 1e9:
		return fmt.Sprintf("%.1fB", float64(n)/1e9)
	default:
		return fmt.Sprintf("%.0fM", float64(n)/1e6)
	}
}

// downloadCode puts the model's code-only files into the HF cache: with the
// `hf` CLI when the host has it, else through the Hub's HTTP API into the
// same cache layout.
func (c *cycle) downloadCode(ctx context.Context, m *hub.Model, rev string) error {
	j := c.job
	cache := c.w.opt.HFCache
	if cache == "" {
		cache = hub.CacheDir(os.Getenv)
	}
	args := []string{c.w.opt.HFCLI, "download", j.ModelID, "--revision", rev, "--quiet", "--exclude"}
	args = append(args, weightFiles...)
	res, err := c.h.Exec(ctx, Cmd{Name: "hf-download", Args: args, Class: ClassTool, Env: []string{"HF_HUB_CACHE=" + cache}})
	if err == nil {
		out, _ := os.ReadFile(res.Stdout)
		c.st.Gather.Snapshot = strings.TrimSpace(string(out))
		c.st.Gather.Via = "hf download"
	} else {
		// No hf CLI (or it failed): the same through the Hub's HTTP API.
		snap := filepath.Join(cache, "models--"+strings.ReplaceAll(j.ModelID, "/", "--"), "snapshots", rev)
		for _, f := range m.Siblings {
			name := f.Name
			if isWeight(name) || !filepath.IsLocal(name) {
				continue
			}
			b, err := c.w.opt.Hub.File(ctx, j.ModelID, rev, name)
			if err != nil {
				return Transient(fmt.Errorf("gather: download %s of %s: %w", name, j.ModelID, err))
			}
			dst := filepath.Join(snap, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return fmt.Errorf("gather: %w", err)
			}
			if err := os.WriteFile(dst, b, 0o644); err != nil {
				return fmt.Errorf("gather: %w", err)
			}
		}
		ref := filepath.Join(cache, "models--"+strings.ReplaceAll(j.ModelID, "/", "--"), "refs", "main")
		if err := os.MkdirAll(filepath.Dir(ref), 0o755); err != nil {
			return fmt.Errorf("gather: %w", err)
		}
		if err := os.WriteFile(ref, []byte(rev), 0o644); err != nil {
			return fmt.Errorf("gather: %w", err)
		}
		c.st.Gather.Snapshot = snap
		c.st.Gather.Via = "the Hub's HTTP API (no `hf` CLI on this runner)"
	}
	c.st.Gather.CodeFiles = nil
	_ = filepath.WalkDir(c.st.Gather.Snapshot, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(c.st.Gather.Snapshot, p)
			c.st.Gather.CodeFiles = append(c.st.Gather.CodeFiles, filepath.ToSlash(rel))
		}
		return nil
	})
	return nil
}

var (
	safeIdent = regexp.MustCompile(`^[a-z0-9_]+$`)
	// commitID is a git commit id as the Hub gives it.
	commitID = regexp.MustCompile(`^[0-9a-f]{40}$`)
)

// transformersHas says whether the runner's transformers has a modeling
// file for the model type.
func (c *cycle) transformersHas(ctx context.Context) string {
	mt := strings.ReplaceAll(strings.ToLower(c.st.ModelType), "-", "_")
	if !safeIdent.MatchString(mt) {
		return "not checked: the model type is not a Python module name"
	}
	script := "import importlib.util as u\ntry:\n import transformers\nexcept ImportError:\n print('missing'); raise SystemExit\n" +
		"print('yes' if u.find_spec('transformers.models." + mt + ".modeling_" + mt + "') else 'no', transformers.__version__)\n"
	res, err := c.h.Exec(ctx, Cmd{Name: "transformers-check", Args: []string{c.w.opt.Python, "-c", script}, Class: ClassTest})
	if err != nil {
		return "not checked: " + c.w.opt.Python + " did not run"
	}
	out, _ := os.ReadFile(res.Stdout)
	f := strings.Fields(string(out))
	switch {
	case len(f) == 0 || f[0] == "missing":
		return "not checked: transformers is not installed on this runner (pip install transformers)"
	case f[0] == "yes":
		return "yes (transformers " + strings.Join(f[1:], " ") + " has modeling_" + mt + ".py)"
	default:
		return "no (transformers " + strings.Join(f[1:], " ") + " has no modeling_" + mt + ".py: the model file is written from the Hub's code)"
	}
}

// survey is Phase 1: what the checkout already has for the model, posted
// on the issue.
func (c *cycle) survey(ctx context.Context) error {
	wt := c.h.Worktree()
	j := c.job
	rep, err := survey.Survey(wt.Dir, survey.Model{ID: j.ModelID, Architecture: j.Architecture, ModelType: c.st.ModelType, ConfigClass: c.st.ConfigClass}, nil)
	if err != nil {
		return fmt.Errorf("survey: %w", err)
	}
	c.st.Covered = rep.Covered
	mt := strings.ReplaceAll(strings.ToLower(c.st.ModelType), "-", "_")
	if !safeIdent.MatchString(mt) {
		mt = strings.Trim(regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(strings.ToLower(j.ModelID[strings.LastIndex(j.ModelID, "/")+1:]), "_"), "_")
	}
	c.st.Module = "modeling_" + mt
	c.st.ModelFile = survey.CustomDir + "/" + c.st.Module + ".py"
	tests := rep.Checkout.TestsDir
	if tests == "" {
		tests = DefaultTestsDir
	}
	c.st.TestFile = tests + "/test_" + mt + "_modeling.py"
	if j.Architecture != "" {
		c.st.Classes = []string{j.Architecture}
	}
	c.st.ConfigName = apply.ConfigName(j.ModelID)
	c.st.Survey = surveyText(j, rep, c.st)
	_, err = c.h.Comment(ctx, 0, "survey", comments.Post{Title: "Phase 0-1: gather and survey of " + j.ModelID, Intro: c.st.Survey})
	return err
}

func surveyText(j Job, rep *survey.Report, st *State) string {
	var b strings.Builder
	fmt.Fprintf(&b, "- **Model:** `%s` at revision `%s`, architecture `%s`, model type `%s`\n", j.ModelID, shortSHA(j.Revision), j.Architecture, st.ModelType)
	fmt.Fprintf(&b, "- **Size:** %s\n", st.Gather.Plan)
	if st.Gather.Fit != "" {
		fmt.Fprintf(&b, "- **Fit on this runner:** %s\n", st.Gather.Fit)
	}
	fmt.Fprintf(&b, "- **Code files** (%d, via %s): %s\n", len(st.Gather.CodeFiles), st.Gather.Via, strings.Join(codeList(st.Gather.CodeFiles, 12), ", "))
	fmt.Fprintf(&b, "- **transformers:** %s\n", st.Gather.Transformers)
	fmt.Fprintf(&b, "- **Registry:** `%s` (%s)\n", rep.Checkout.Registry, rep.Checkout.LayoutS)
	if len(rep.Members) > 0 {
		b.WriteString("- **Family in the registry:**")
		for _, m := range rep.Members {
			fmt.Fprintf(&b, " `%s` (%s)", m.Name, m.Status)
		}
		b.WriteString("\n")
	}
	if rep.Covered {
		b.WriteString("- **Existing custom code covers it:**")
		for _, cd := range rep.Code {
			fmt.Fprintf(&b, " `%s:%d` %s;", cd.File, cd.Line, cd.What)
		}
		b.WriteString("\n")
	} else {
		b.WriteString("- **Existing custom code:** none; a new model file is needed\n")
	}
	fmt.Fprintf(&b, "- **Plan:** model `%s`, tests `%s`, config `%s`\n", st.ModelFile, st.TestFile, report.ConfigPath(st.ConfigName))
	return b.String()
}

func codeList(files []string, n int) []string {
	var out []string
	for i, f := range files {
		if i == n {
			out = append(out, fmt.Sprintf("and %d more", len(files)-n))
			break
		}
		out = append(out, "`"+f+"`")
	}
	if len(out) == 0 {
		return []string{"none"}
	}
	return out
}

func shortSHA(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	if s == "" {
		return "main"
	}
	return s
}

// writeModel is Phases 2-6's creative part: the agent writes the model and
// its tests, and the runner commits them.
func (c *cycle) writeModel(ctx context.Context) error {
	if _, err := c.agent(ctx, "model", modelPrompt(c.job, c.st), true); err != nil {
		return err
	}
	for round := 0; ; round++ {
		missing := c.missingFiles()
		if len(missing) == 0 {
			break
		}
		if round >= c.w.opt.FixRounds {
			return fmt.Errorf("the agent wrote no %s after %d requests", strings.Join(missing, " and no "), round+1)
		}
		if _, err := c.agent(ctx, fmt.Sprintf("model-missing-%d", round+1), missingPrompt(c.job, c.st, missing), false); err != nil {
			return err
		}
	}
	_, err := c.commit(ctx, fmt.Sprintf("[AutoDeploy] Add a prefill-only model and tests for %s", c.job.ModelID))
	return err
}

func (c *cycle) missingFiles() []string {
	var out []string
	for _, f := range []string{c.st.ModelFile, c.st.TestFile} {
		if _, err := os.Stat(filepath.Join(c.h.Worktree().Dir, f)); err != nil {
			out = append(out, "`"+f+"`")
		}
	}
	return out
}

func (c *cycle) readModel() (string, error) {
	b, err := os.ReadFile(filepath.Join(c.h.Worktree().Dir, c.st.ModelFile))
	if err != nil {
		return "", fmt.Errorf("read the model file: %w", err)
	}
	return string(b), nil
}

// checkCanonicalOps is Phase 3's check: the model uses AutoDeploy's
// canonical ops (torch.ops.auto_deploy.*). It records what it found; the
// reviewer judges.
func (c *cycle) checkCanonicalOps(ctx context.Context) error {
	src, err := c.readModel()
	if err != nil {
		return err
	}
	ops := regexp.MustCompile(`torch\.ops\.auto_deploy\.([A-Za-z0-9_]+)`).FindAllStringSubmatch(src, -1)
	seen := map[string]bool{}
	var names []string
	for _, o := range ops {
		if !seen[o[1]] {
			seen[o[1]] = true
			names = append(names, o[1])
		}
	}
	if len(names) == 0 {
		c.note("canonical ops: the model file calls no torch.ops.auto_deploy op")
	} else {
		c.note("canonical ops: " + strings.Join(names, ", "))
	}
	return c.save(ctx)
}

// checkRegister is Phase 4's check: the model file registers its class; the
// agent is asked to fix it when it does not.
func (c *cycle) checkRegister(ctx context.Context) error {
	for round := 0; ; round++ {
		src, err := c.readModel()
		if err != nil {
			return err
		}
		if strings.Contains(src, "register_custom_model_cls(") {
			c.note("registration: register_custom_model_cls present")
			return c.save(ctx)
		}
		if round >= c.w.opt.FixRounds {
			return fmt.Errorf("register: the model file still calls no register_custom_model_cls after %d fixes", round)
		}
		if _, err := c.agent(ctx, fmt.Sprintf("register-%d", round+1), registerPrompt(c.job, c.st), false); err != nil {
			return err
		}
		if _, err := c.commit(ctx, "[AutoDeploy] Register the custom model for "+c.job.ModelID); err != nil {
			return err
		}
	}
}

// checkInputContract is Phase 5's check: forward takes input_ids and
// position_ids. It records what it found; the reviewer judges.
func (c *cycle) checkInputContract(ctx context.Context) error {
	src, err := c.readModel()
	if err != nil {
		return err
	}
	var missing []string
	for _, arg := range []string{"input_ids", "position_ids"} {
		if !strings.Contains(src, arg) {
			missing = append(missing, arg)
		}
	}
	if len(missing) > 0 {
		c.note("input contract: the model file never names " + strings.Join(missing, ", "))
	} else {
		c.note("input contract: forward names input_ids and position_ids")
	}
	return c.save(ctx)
}

func (c *cycle) note(s string) {
	for i, n := range c.st.Checks {
		if strings.SplitN(n, ":", 2)[0] == strings.SplitN(s, ":", 2)[0] {
			c.st.Checks[i] = s
			return
		}
	}
	c.st.Checks = append(c.st.Checks, s)
}

func (c *cycle) editModel() apply.Model {
	j := c.job
	m := apply.Model{ID: j.ModelID, Architecture: j.Architecture, WorldSize: max(c.st.WorldSize, 1),
		RemoteCode: j.RemoteCode, ADOnly: true, Date: c.w.opt.Now().UTC()}
	if !c.st.Covered && c.st.Module != "" && len(c.st.Classes) > 0 {
		m.Module, m.Classes = c.st.Module, c.st.Classes
	}
	return m
}

// registry is Phase 8: config YAML, registry entry and __init__.py, before
// the end-to-end run needs them.
func (c *cycle) registry(ctx context.Context) error {
	ch, err := apply.ApplyParts(c.h.Worktree().Dir, c.editModel(), apply.PartRegistry)
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	c.st.Registry = changeLines(ch)
	_, err = c.commit(ctx, "[AutoDeploy] Add "+c.job.ModelID+" to the model registry")
	return err
}

// docs makes Phase 10 or 11's edit, once the end-to-end run passed.
func (c *cycle) docs(part apply.Part, msg string) func(context.Context) error {
	return func(ctx context.Context) error {
		ch, err := apply.ApplyParts(c.h.Worktree().Dir, c.editModel(), part)
		if err != nil {
			return err
		}
		c.st.Docs = append(c.st.Docs, changeLines(ch)...)
		_, err = c.commit(ctx, fmt.Sprintf("[AutoDeploy] "+msg, c.job.ModelID))
		return err
	}
}

func changeLines(ch []apply.Change) []string {
	var out []string
	for _, x := range ch {
		if x.Changed {
			out = append(out, x.Path+": "+x.What)
		}
	}
	return out
}

// Transient marks err as passing (the Hub down, a network outage): the
// runner gives the cycle back to be tried again later.
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return &TransientError{Err: err}
}

// TransientError is an error worth trying again later.
type TransientError struct{ Err error }

func (e *TransientError) Error() string { return e.Err.Error() }
func (e *TransientError) Unwrap() error { return e.Err }

// IsTransient reports whether err was marked with Transient.
func IsTransient(err error) bool {
	var t *TransientError
	return errors.As(err, &t)
}

// marshalIndent is for comments that show a value as JSON.
func marshalIndent(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}
