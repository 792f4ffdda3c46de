// Package survey looks at a TensorRT-LLM checkout the way the onboarding
// workflow's Phase 1 asks: which registry generation it has, which family
// members are registered (active or commented out as failing) and which are
// missing, and whether AutoDeploy custom model code already covers the
// model's config class, architecture or model_type.
package survey

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/nvidia/adbot/onboarding/edit/initpy"
	"github.com/nvidia/adbot/onboarding/edit/modelconfig"
	"github.com/nvidia/adbot/onboarding/edit/registry"
)

// Paths in a TensorRT-LLM checkout.
const (
	CustomDir = "tensorrt_llm/_torch/auto_deploy/models/custom"
	// The unit-test folder moved between versions; both are looked for.
	TestsDirOld = "tests/unittest/_torch/auto_deploy/unit/singlegpu/models"
	TestsDirNew = "tests/unittest/auto_deploy/singlegpu/models"
)

// Checkout is what a TensorRT-LLM checkout offers the onboarding edits.
type Checkout struct {
	Dir string `json:"dir"`
	// Registry is the registry to edit (Internal when present, else Legacy),
	// repository-relative; "" when there is none.
	Registry string          `json:"registry"`
	Layout   registry.Layout `json:"-"`
	LayoutS  string          `json:"layout"`
	// Registries lists every registry file present.
	Registries []string `json:"registries"`
	// Configs is the user-facing configs folder.
	Configs string `json:"configs"`
	// WorldSizeKey is the key the checkout's world_size_N.yaml files set.
	WorldSizeKey string `json:"world_size_key"`
	// TestsDir is the unit-test folder for models ("" when neither exists).
	TestsDir string `json:"tests_dir,omitempty"`
}

// Inspect finds what a checkout has.
func Inspect(dir string) (*Checkout, error) {
	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() {
		return nil, fmt.Errorf("inspect checkout %s: not a folder", dir)
	}
	c := &Checkout{Dir: dir, Configs: registry.LegacyConfigs}
	for _, p := range []string{registry.InternalPath, registry.LegacyPath} {
		if exists(filepath.Join(dir, p)) {
			c.Registries = append(c.Registries, p)
		}
	}
	if len(c.Registries) == 0 {
		return nil, fmt.Errorf("inspect checkout %s: no model registry (%s or %s)", dir, registry.LegacyPath, registry.InternalPath)
	}
	c.Registry = c.Registries[0]
	b, err := os.ReadFile(filepath.Join(dir, c.Registry))
	if err != nil {
		return nil, fmt.Errorf("inspect checkout %s: %w", dir, err)
	}
	r, err := registry.Parse(filepath.Join(dir, c.Registry), b)
	if err != nil {
		return nil, err
	}
	c.Layout, c.LayoutS = r.Layout, r.Layout.String()
	c.WorldSizeKey = modelconfig.KeyWorldSize
	matches, _ := filepath.Glob(filepath.Join(dir, registry.LegacyConfigs, "world_size_*.yaml"))
	sort.Strings(matches)
	for _, m := range matches {
		if wb, err := os.ReadFile(m); err == nil {
			c.WorldSizeKey = modelconfig.WorldSizeKey(wb)
			break
		}
	}
	for _, t := range []string{TestsDirNew, TestsDirOld} {
		if exists(filepath.Join(dir, t)) {
			c.TestsDir = t
			break
		}
	}
	return c, nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Model is what the survey needs to know of the model.
type Model struct {
	ID           string
	Architecture string
	ModelType    string
	// ConfigClass is the config class name (from auto_map's AutoConfig, or
	// derived from the architecture when empty).
	ConfigClass string
}

// ConfigClassOf derives the config class: auto_map's AutoConfig
// ("configuration_deepseek.DeepseekV3Config" -> "DeepseekV3Config"), else
// the architecture less its head ("Qwen3ForCausalLM" -> "Qwen3Config").
func ConfigClassOf(architecture string, autoMap map[string]any) string {
	if s, ok := autoMap["AutoConfig"].(string); ok && s != "" {
		if i := strings.LastIndex(s, "."); i >= 0 {
			return s[i+1:]
		}
		return s
	}
	for _, suf := range []string{"ForCausalLM", "ForConditionalGeneration", "LMHeadModel", "Model"} {
		if strings.HasSuffix(architecture, suf) && len(architecture) > len(suf) {
			return strings.TrimSuffix(architecture, suf) + "Config"
		}
	}
	return ""
}

// Status of a family member in the registry.
type Status string

const (
	Registered Status = "registered" // an active entry
	Disabled   Status = "disabled"   // only commented-out entries (a failure)
	Missing    Status = "missing"    // known (e.g. from the Hub) but not in the registry
)

// Member is one family member.
type Member struct {
	Name      string `json:"name"`
	Status    Status `json:"status"`
	Registry  string `json:"registry,omitempty"`
	Line      int    `json:"line,omitempty"`
	ConfigID  string `json:"config_id,omitempty"`
	WorldSize int    `json:"world_size,omitempty"`
	// Reason is the failure noted above a commented-out entry.
	Reason string `json:"reason,omitempty"`
}

// Code is a place in the custom model code that concerns the model.
type Code struct {
	File string `json:"file"`
	Line int    `json:"line"`
	// What matched: "registers <ConfigClass> -> <Class>", "defines <Class>",
	// "model_type <t>", "__init__ imports <Class>".
	What string `json:"what"`
}

// Report is the survey of one model in one checkout.
type Report struct {
	Checkout *Checkout `json:"checkout"`
	Family   string    `json:"family"`
	Members  []Member  `json:"members"`
	// Code lists existing custom code that covers the model; empty when none.
	Code []Code `json:"code"`
	// Covered is true when a registration for the config class or the
	// architecture exists (the model may need no new modeling file).
	Covered bool `json:"covered"`
}

// Survey surveys m in the checkout at dir. known lists other family members
// known from elsewhere (the Hub); those the registry lacks are Missing.
func Survey(dir string, m Model, known []string) (*Report, error) {
	c, err := Inspect(dir)
	if err != nil {
		return nil, err
	}
	rep := &Report{Checkout: c, Family: registry.FamilyStem(m.ID), Members: []Member{}, Code: []Code{}}
	seen := map[string]bool{}
	for _, p := range c.Registries {
		path := filepath.Join(dir, p)
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("survey %s: %w", path, err)
		}
		r, err := registry.Parse(path, b)
		if err != nil {
			return nil, err
		}
		// One member per name: its active entry if any, else its first commented one.
		byName := map[string]*registry.Entry{}
		var order []string
		for _, e := range r.Family(m.ID) {
			k := strings.ToLower(e.Name)
			prev, ok := byName[k]
			if !ok {
				order = append(order, k)
			}
			if !ok || (!prev.Active && e.Active) {
				byName[k] = e
			}
		}
		for _, k := range order {
			e := byName[k]
			mem := Member{Name: e.Name, Registry: p, Line: e.Line, ConfigID: e.ConfigID, WorldSize: worldSize(dir, c, e), Status: Registered}
			if !e.Active {
				mem.Status, mem.Reason = Disabled, e.Reason
			}
			if !seen[k] {
				rep.Members = append(rep.Members, mem)
				seen[k] = true
			}
		}
	}
	cands := append([]string{m.ID}, known...)
	for _, id := range cands {
		if !seen[strings.ToLower(id)] {
			rep.Members = append(rep.Members, Member{Name: id, Status: Missing})
			seen[strings.ToLower(id)] = true
		}
	}
	if err := rep.findCode(dir, m); err != nil {
		return nil, err
	}
	return rep, nil
}

// worldSize is an entry's GPU count: from the entry, else from its config
// files (world_size or tensor_parallel_size keys).
func worldSize(dir string, c *Checkout, e *registry.Entry) int {
	if ws := e.WorldSize(); ws > 0 {
		return ws
	}
	for _, f := range e.Configs() {
		// A config is a file of the configs folder: a name from the
		// registry that leads elsewhere ("../../x.yaml") is not read.
		if !fs.ValidPath(f) || strings.Contains(f, "/") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, c.Configs, f))
		if err != nil {
			continue
		}
		if _, ws, err := modelconfig.Read(f, b); err == nil && ws > 0 {
			return ws
		}
	}
	return 0
}

var (
	registerRE = regexp.MustCompile(`register_custom_model_cls\(\s*["']([A-Za-z0-9_]+)["']\s*,\s*([A-Za-z0-9_]+)`)
	classRE    = regexp.MustCompile(`^class\s+([A-Za-z0-9_]+)\s*[(:]`)
	mtRE       = regexp.MustCompile(`model_type\s*[=:]\s*["']([A-Za-z0-9_.-]+)["']`)
)

// findCode scans models/custom/*.py and __init__.py.
func (rep *Report) findCode(dir string, m Model) error {
	cdir := filepath.Join(dir, CustomDir)
	ents, err := os.ReadDir(cdir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("survey custom models in %s: %w", cdir, err)
	}
	cfgClass := m.ConfigClass
	if cfgClass == "" {
		cfgClass = ConfigClassOf(m.Architecture, nil)
	}
	registered := map[string]bool{}
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".py") || e.Name() == "__init__.py" {
			continue
		}
		rel := filepath.ToSlash(filepath.Join(CustomDir, e.Name()))
		b, err := os.ReadFile(filepath.Join(cdir, e.Name()))
		if err != nil {
			return fmt.Errorf("survey %s: %w", rel, err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if mm := registerRE.FindStringSubmatch(line); mm != nil && (mm[1] == cfgClass || mm[2] == m.Architecture) {
				rep.Code = append(rep.Code, Code{File: rel, Line: i + 1, What: fmt.Sprintf("registers %s -> %s", mm[1], mm[2])})
				rep.Covered = true
				registered[mm[2]] = true
				continue
			}
			if mm := classRE.FindStringSubmatch(line); mm != nil && m.Architecture != "" && mm[1] == m.Architecture {
				rep.Code = append(rep.Code, Code{File: rel, Line: i + 1, What: "defines " + mm[1]})
				continue
			}
			if mm := mtRE.FindStringSubmatch(line); mm != nil && m.ModelType != "" && mm[1] == m.ModelType {
				rep.Code = append(rep.Code, Code{File: rel, Line: i + 1, What: "model_type " + mm[1]})
			}
		}
	}
	ipath := filepath.Join(dir, initpy.Path)
	b, err := os.ReadFile(ipath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("survey %s: %w", ipath, err)
	}
	f, err := initpy.Parse(ipath, b)
	if err != nil {
		return err
	}
	mods := make([]string, 0, len(f.Imports))
	for mod := range f.Imports {
		mods = append(mods, mod)
	}
	sort.Strings(mods)
	lines := strings.Split(string(b), "\n")
	for _, mod := range mods {
		for _, n := range f.Imports[mod] {
			if n == m.Architecture || registered[n] {
				line := 0
				for i, l := range lines {
					if strings.HasPrefix(l, "from "+mod+" ") {
						line = i + 1
					}
				}
				rep.Code = append(rep.Code, Code{File: initpy.Path, Line: line, What: fmt.Sprintf("__init__ imports %s from %s", n, mod)})
			}
		}
	}
	return nil
}
