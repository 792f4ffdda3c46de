// Package apply makes every deterministic onboarding edit in a TensorRT-LLM
// checkout for one model: its standalone config YAML, registry entries for it
// and its family, the support-matrix row, the cookbook notebook and the
// custom model's registration in __init__.py. All new contents are worked out
// first; only then are the files written, each atomically. Running it twice
// changes nothing the second time.
package apply

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nvidia/adbot/onboarding/edit"
	"github.com/nvidia/adbot/onboarding/edit/cookbook"
	"github.com/nvidia/adbot/onboarding/edit/initpy"
	"github.com/nvidia/adbot/onboarding/edit/matrix"
	"github.com/nvidia/adbot/onboarding/edit/modelconfig"
	"github.com/nvidia/adbot/onboarding/edit/registry"
	"github.com/nvidia/adbot/onboarding/hub"
	"github.com/nvidia/adbot/onboarding/survey"
)

// Member is a family member to register beside the model.
type Member struct {
	ID        string
	WorldSize int
}

// Model is what the edits need to know.
type Model struct {
	ID           string
	Display      string // the support matrix's Model column and the cookbook's prose
	Architecture string
	WorldSize    int
	RemoteCode   bool
	// Layers, when positive, reduces the config to that many layers (the
	// workflow's first, quick e2e run); 0 is the full model.
	Layers int
	// ADOnly: no native PyTorch-backend support, so the matrix row gets the AutoDeploy footnote.
	ADOnly bool
	// Family lists other members to register with their GPU counts.
	Family []Member
	// Module and Classes register the custom model in __init__.py
	// ("modeling_rocket", ["RocketForCausalLM"]); empty Module skips it.
	Module  string
	Classes []string
	// Cookbook describes the model in the notebook (ID, ConfigPath, Display
	// and RemoteCode are filled in from the fields above).
	Cookbook cookbook.Model
	// Date stamps a new registry family section.
	Date time.Time
}

// ConfigName is the model's config YAML name: the id's name part in lower
// case ("zai-org/GLM-4.7-Flash" -> "glm-4.7-flash.yaml").
func ConfigName(id string) string {
	name := id[strings.LastIndex(id, "/")+1:]
	return strings.ToLower(name) + ".yaml"
}

// Change is what happened to one file.
type Change struct {
	Path    string `json:"path"`
	Changed bool   `json:"changed"`
	What    string `json:"what"`
}

type pending struct {
	path string
	old  []byte
	new  []byte
	what string
	mode fs.FileMode
}

// Part is one of the edits Apply makes; the workflow makes the registry's
// before the end-to-end run and the documentation's after it.
type Part uint

// The parts of the onboarding edits.
const (
	// PartRegistry is the standalone config YAML, the registry entries and
	// the custom model's registration in __init__.py (Phase 8).
	PartRegistry Part = 1 << iota
	// PartMatrix is the support-matrix row (Phase 10).
	PartMatrix
	// PartCookbook is the cookbook notebook (Phase 11).
	PartCookbook

	// AllParts is every edit.
	AllParts = PartRegistry | PartMatrix | PartCookbook
)

// Apply edits the checkout at dir for m: every part.
func Apply(dir string, m Model) ([]Change, error) { return ApplyParts(dir, m, AllParts) }

// ApplyParts makes the given parts of the edits in the checkout at dir for m.
func ApplyParts(dir string, m Model, parts Part) ([]Change, error) {
	if err := hub.ValidateModelID(m.ID); err != nil {
		return nil, fmt.Errorf("onboarding edits: %w", err)
	}
	// Family ids come from the Hub's search and go into the registry's
	// YAML as they are: hold them to the same rule as the model's own.
	for _, f := range m.Family {
		if err := hub.ValidateModelID(f.ID); err != nil {
			return nil, fmt.Errorf("onboarding edits for %s: family member: %w", m.ID, err)
		}
	}
	if m.WorldSize <= 0 {
		return nil, fmt.Errorf("onboarding edits for %s: world size %d", m.ID, m.WorldSize)
	}
	co, err := survey.Inspect(dir)
	if err != nil {
		return nil, err
	}
	display := m.Display
	if display == "" {
		display = m.ID[strings.LastIndex(m.ID, "/")+1:]
	}
	var work []*pending
	read := func(rel string, mustExist bool) (*pending, error) {
		p := &pending{path: rel, mode: 0o644}
		full := filepath.Join(dir, rel)
		b, err := os.ReadFile(full)
		switch {
		case err == nil:
			p.old, p.new = b, b
			if st, err := os.Stat(full); err == nil {
				p.mode = st.Mode().Perm()
			}
		case errors.Is(err, fs.ErrNotExist) && !mustExist:
		default:
			return nil, fmt.Errorf("read %s: %w", full, err)
		}
		work = append(work, p)
		return p, nil
	}

	// 1. The standalone config YAML.
	cfgName := ConfigName(m.ID)
	cfgRel := filepath.ToSlash(filepath.Join(co.Configs, cfgName))
	if parts&PartRegistry != 0 {
		cp, err := read(cfgRel, false)
		if err != nil {
			return nil, err
		}
		if cp.old == nil {
			// A checkout without defaults gets a config without them; one whose
			// defaults cannot be read gets no config rather than a thinner one.
			basePath := filepath.Join(dir, co.Configs, "dashboard_default.yaml")
			base, rerr := os.ReadFile(basePath)
			if rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				return nil, fmt.Errorf("read %s: %w", basePath, rerr)
			}
			cp.new, err = modelconfig.Render(modelconfig.Options{ModelID: m.ID, Display: display, Base: base,
				WorldSize: m.WorldSize, WorldKey: co.WorldSizeKey, RemoteCode: m.RemoteCode, Layers: m.Layers})
			cp.what = "created"
		} else {
			cp.new, _, err = modelconfig.SetScalar(cp.old, co.WorldSizeKey, fmt.Sprint(m.WorldSize))
			if err == nil {
				cp.new, _, err = modelconfig.SetLayers(cp.new, m.Layers)
			}
			cp.what = "updated"
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(dir, cfgRel), err)
		}

		// 2. Registry entries: the model first, then its family.
		rp, err := read(co.Registry, true)
		if err != nil {
			return nil, err
		}
		var outcomes []string
		entries := []registry.NewEntry{{Name: m.ID, WorldSize: m.WorldSize, ModelConfig: cfgName, Date: m.Date}}
		for _, f := range m.Family {
			entries = append(entries, registry.NewEntry{Name: f.ID, WorldSize: f.WorldSize, Date: m.Date})
		}
		for _, e := range entries {
			out, o, err := registry.AddEntry(filepath.Join(dir, co.Registry), rp.new, e)
			if err != nil {
				return nil, err
			}
			rp.new = out
			if o != registry.Unchanged {
				outcomes = append(outcomes, fmt.Sprintf("%s %s", e.Name, o))
			}
		}
		rp.what = strings.Join(outcomes, "; ")

		// __init__.py.
		if m.Module != "" {
			ip, err := read(initpy.Path, true)
			if err != nil {
				return nil, err
			}
			out, changed, err := initpy.Add(filepath.Join(dir, initpy.Path), ip.new, m.Module, m.Classes)
			if err != nil {
				return nil, err
			}
			ip.new = out
			if changed {
				ip.what = "registered " + strings.Join(m.Classes, ", ")
			}
		}
	}

	// 3. The support-matrix row.
	if parts&PartMatrix != 0 && m.Architecture != "" {
		mp, err := read(matrix.Path, true)
		if err != nil {
			return nil, err
		}
		out, res, err := matrix.AddRow(filepath.Join(dir, matrix.Path), mp.new, matrix.Row{
			Architecture: m.Architecture, Model: display, Example: m.ID, ADOnly: m.ADOnly, ConfigFile: cfgName})
		if err != nil {
			return nil, err
		}
		mp.new = out
		mp.what = res.Outcome
		if res.Footnote != "" {
			mp.what += fmt.Sprintf(" (footnote [^%s], %s style)", res.Footnote, res.Style)
		}
	}

	// 4. The cookbook, created once from the template; an existing notebook
	// is people's work and stays as it is.
	if parts&PartCookbook != 0 {
		nbRel := cookbook.Dir + "/" + cookbook.FileName(m.ID)
		np, err := read(nbRel, false)
		if err != nil {
			return nil, err
		}
		if np.old == nil {
			tmplPath := filepath.Join(dir, cookbook.Template)
			tmpl, err := os.ReadFile(tmplPath)
			if err != nil {
				return nil, fmt.Errorf("cookbook template: %w", err)
			}
			cb := m.Cookbook
			cb.ID, cb.ConfigPath, cb.RemoteCode = m.ID, cfgRel, m.RemoteCode
			if cb.Display == "" {
				cb.Display = display
			}
			if cb.Architecture == "" {
				cb.Architecture = m.Architecture
			}
			if np.new, err = cookbook.Render(tmplPath, tmpl, cb); err != nil {
				return nil, err
			}
			np.what = "created"
		}
	}

	// Write.
	var changes []Change
	for _, p := range work {
		changed := string(p.old) != string(p.new) || (p.old == nil && p.new != nil)
		if changed {
			if err := edit.WriteAtomic(filepath.Join(dir, p.path), p.new, p.mode); err != nil {
				return changes, err
			}
		}
		what := p.what
		if !changed {
			what = "unchanged"
		}
		changes = append(changes, Change{Path: p.path, Changed: changed, What: what})
	}
	return changes, nil
}
