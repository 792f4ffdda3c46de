package apply

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nvidia/adbot/internal/fixtures"
	"github.com/nvidia/adbot/internal/golden"
	"github.com/nvidia/adbot/onboarding/edit/cookbook"
	"github.com/nvidia/adbot/onboarding/edit/edittest"
	"github.com/nvidia/adbot/onboarding/sizing"
)

const initPy = `from .modeling_gemma import GemmaADForCausalLM
from .modeling_glm4_moe_lite import Glm4MoeLiteForCausalLM

__all__ = (
    "GemmaADForCausalLM",
    "Glm4MoeLiteForCausalLM",
)
`

// checkout copies the fixture files to their upstream paths in a temporary
// folder, plus an __init__.py (no Python source is stored among the fixtures).
func checkout(t *testing.T) (string, map[string][]byte) {
	t.Helper()
	root := fixtures.Path(t, "trtllm")
	dir := t.TempDir()
	orig := map[string][]byte{}
	for _, rel := range []string{
		"examples/auto_deploy/model_registry/models.yaml",
		"examples/auto_deploy/model_registry/configs/dashboard_default.yaml",
		"examples/auto_deploy/model_registry/configs/world_size_2.yaml",
		"examples/auto_deploy/cookbooks/glm_4.7_flash_trtllm_cookbook.ipynb",
		"docs/source/models/supported-models.md",
	} {
		b, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		orig[rel] = b
	}
	orig["tensorrt_llm/_torch/auto_deploy/models/custom/__init__.py"] = []byte(initPy)
	for rel, b := range orig {
		p := filepath.Join(dir, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, orig
}

func TestApply(t *testing.T) {
	dir, orig := checkout(t)
	c, err := sizing.ParseConfig("config.json", fixtures.Read(t, "hf", "google__gemma-3-27b-it", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	plan := sizing.Make(sizing.Input{ModelID: "google/gemma-3-27b-it", Config: c}, nil)
	m := Model{
		ID: "google/gemma-3-27b-it", Display: "Gemma 3 27B", Architecture: "Gemma3ForConditionalGeneration",
		WorldSize: plan.WorldSize, Layers: 4, ADOnly: true,
		Family: []Member{{"google/gemma-3-4b-it", 2}, {"google/gemma-3-12b-it", 2}},
		Module: "modeling_gemma3", Classes: []string{"Gemma3ForConditionalGeneration"},
		Cookbook: cookbook.Model{Params: plan.Params, Context: 131072, MemoryBytes: plan.MemoryBytes, Precision: "BF16"},
		Date:     time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC),
	}
	changes, err := Apply(dir, m)
	if err != nil {
		t.Fatal(err)
	}
	var summary []string
	for _, ch := range changes {
		summary = append(summary, ch.Path+": "+ch.What)
	}
	want := []string{
		"examples/auto_deploy/model_registry/configs/gemma-3-27b-it.yaml: created",
		"examples/auto_deploy/model_registry/models.yaml: google/gemma-3-27b-it reactivated; google/gemma-3-4b-it reactivated; google/gemma-3-12b-it reactivated",
		"tensorrt_llm/_torch/auto_deploy/models/custom/__init__.py: registered Gemma3ForConditionalGeneration",
		"docs/source/models/supported-models.md: inserted (footnote [^5], shared style)",
		"examples/auto_deploy/cookbooks/gemma_3_27b_it_trtllm_cookbook.ipynb: created",
	}
	if diff := cmp.Diff(summary, want); diff != "" {
		t.Errorf("changes (-got +want):\n%s", diff)
	}
	// Every edited file differs from its original only where intended.
	var all strings.Builder
	for _, ch := range changes {
		got, err := os.ReadFile(filepath.Join(dir, ch.Path))
		if err != nil {
			t.Fatal(err)
		}
		if o, ok := orig[ch.Path]; ok {
			all.WriteString("=== " + ch.Path + "\n" + edittest.Diff(o, got))
		} else if strings.HasSuffix(ch.Path, ".yaml") {
			all.WriteString("=== " + ch.Path + " (new)\n" + string(got))
		} else {
			var nb map[string]any
			if err := json.Unmarshal(got, &nb); err != nil || nb["nbformat"].(float64) != 4 {
				t.Errorf("%s: not an nbformat-4 notebook: %v", ch.Path, err)
			}
		}
	}
	golden.Check(t, "gemma3.diff.golden", []byte(all.String()))
	// Idempotent.
	again, err := Apply(dir, m)
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range again {
		if ch.Changed {
			t.Errorf("second run changed %s: %s", ch.Path, ch.What)
		}
	}
	// The full-layer run: only the config's layer line goes.
	m.Layers = 0
	before, _ := os.ReadFile(filepath.Join(dir, "examples/auto_deploy/model_registry/configs/gemma-3-27b-it.yaml"))
	third, err := Apply(dir, m)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "examples/auto_deploy/model_registry/configs/gemma-3-27b-it.yaml"))
	if d := edittest.Diff(before, after); d != "@@ line 27: -2 +0\n-model_kwargs:\n-  num_hidden_layers: 4\n" {
		t.Errorf("full layers diff:\n%s", d)
	}
	n := 0
	for _, ch := range third {
		if ch.Changed {
			n++
		}
	}
	if n != 1 {
		t.Errorf("full layers changed %d files", n)
	}
}

func TestApplyLeavesNothingOnError(t *testing.T) {
	dir, orig := checkout(t)
	// A broken support matrix stops everything before any file is written.
	bad := filepath.Join(dir, "docs/source/models/supported-models.md")
	os.WriteFile(bad, []byte("# no table\n"), 0o644)
	_, err := Apply(dir, Model{ID: "acme/Rocket-7B", Architecture: "RocketForCausalLM", WorldSize: 2})
	if err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("got %v, want an error naming %s", err, bad)
	}
	for rel, b := range orig {
		if rel == "docs/source/models/supported-models.md" {
			continue
		}
		got, _ := os.ReadFile(filepath.Join(dir, rel))
		if string(got) != string(b) {
			t.Errorf("%s was written", rel)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "examples/auto_deploy/model_registry/configs/rocket-7b.yaml")); err == nil {
		t.Error("config YAML was written")
	}
}

// TestApplyRejectsHostileIDs: a family member's id goes into the registry's
// YAML verbatim, so one that is not a Hub id (an alias, a carriage return, a
// path) is refused before anything is written.
func TestApplyRejectsHostileIDs(t *testing.T) {
	for _, m := range []Model{
		{ID: "acme/..", Architecture: "RocketForCausalLM", WorldSize: 2},
		{ID: "acme/Rocket-7B", Architecture: "RocketForCausalLM", WorldSize: 2, Family: []Member{{"acme/*alias", 2}}},
		{ID: "acme/Rocket-7B", Architecture: "RocketForCausalLM", WorldSize: 2, Family: []Member{{"acme/Rocket-1B\r", 2}}},
		{ID: "acme/Rocket-7B", Architecture: "RocketForCausalLM", WorldSize: 2, Family: []Member{{"acme/../../etc", 2}}},
	} {
		dir, orig := checkout(t)
		if _, err := Apply(dir, m); err == nil {
			t.Errorf("Apply(%+v) succeeded, want an error", m)
		}
		for rel, b := range orig {
			if got, _ := os.ReadFile(filepath.Join(dir, rel)); string(got) != string(b) {
				t.Errorf("%+v: %s was written", m, rel)
			}
		}
	}
}

// TestApplyUnreadableDefaults: defaults that are there but cannot be read
// stop the edits; the config is not written without them.
func TestApplyUnreadableDefaults(t *testing.T) {
	dir, _ := checkout(t)
	p := filepath.Join(dir, "examples/auto_deploy/model_registry/configs/dashboard_default.yaml")
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(p, 0o755); err != nil { // a folder: reading it fails
		t.Fatal(err)
	}
	_, err := Apply(dir, Model{ID: "acme/Rocket-7B", Architecture: "RocketForCausalLM", WorldSize: 2})
	if err == nil || !strings.Contains(err.Error(), "dashboard_default.yaml") {
		t.Errorf("got %v, want an error naming dashboard_default.yaml", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "examples/auto_deploy/model_registry/configs/rocket-7b.yaml")); err == nil {
		t.Error("config YAML was written without its defaults")
	}
}

func TestConfigName(t *testing.T) {
	for id, want := range map[string]string{"zai-org/GLM-4.7-Flash": "glm-4.7-flash.yaml", "stepfun-ai/Step-3.7-Flash": "step-3.7-flash.yaml"} {
		if got := ConfigName(id); got != want {
			t.Errorf("ConfigName(%s) = %s, want %s", id, got, want)
		}
	}
}

// TestApplyInternal uses the newer registry generation, built from the
// registry README's own example.
func TestApplyInternal(t *testing.T) {
	dir, _ := checkout(t)
	readme := string(fixtures.Read(t, "trtllm", "examples", "auto_deploy", "model_registry", "README.md"))
	i := strings.Index(readme, "```yaml\nversion: '2.0'\n")
	j := strings.Index(readme[i+8:], "```")
	p := filepath.Join(dir, "tensorrt_llm/_torch/auto_deploy/config/model_registry_internal/models.yaml")
	os.MkdirAll(filepath.Dir(p), 0o755)
	old := []byte(readme[i+8 : i+8+j])
	os.WriteFile(p, old, 0o644)
	changes, err := Apply(dir, Model{ID: "meta-llama/Llama-3.1-70B-Instruct", Architecture: "LlamaForCausalLM", WorldSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	if changes[1].Path != "tensorrt_llm/_torch/auto_deploy/config/model_registry_internal/models.yaml" || !changes[1].Changed {
		t.Fatalf("changes %+v", changes)
	}
	got, _ := os.ReadFile(p)
	want := "@@ line 9: -0 +6\n+- name: meta-llama/Llama-3.1-70B-Instruct\n+  config_id: llama_3_1_70b_instruct\n+  world_size: 4\n+  ad_defaults: ['ad_base.yaml']\n+  user_configs: ['dashboard_default.yaml', 'llama-3.1-70b-instruct.yaml']\n+\n"
	if d := edittest.Diff(old, got); d != want {
		t.Errorf("diff:\n%s\nwant:\n%s", d, want)
	}
}

// The workflow makes the registry's edits before the end-to-end run and the
// documentation's after it: the two steps together leave what one Apply does,
// and the first touches no documentation.
func TestApplyPartsInTwoSteps(t *testing.T) {
	m := Model{
		ID: "google/gemma-3-27b-it", Display: "Gemma 3 27B", Architecture: "Gemma3ForConditionalGeneration",
		WorldSize: 2, ADOnly: true, Module: "modeling_gemma3", Classes: []string{"Gemma3ForConditionalGeneration"},
		Date: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC),
	}
	once, _ := checkout(t)
	if _, err := Apply(once, m); err != nil {
		t.Fatal(err)
	}
	split, _ := checkout(t)
	first, err := ApplyParts(split, m, PartRegistry)
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range first {
		if strings.HasPrefix(ch.Path, "docs/") || strings.Contains(ch.Path, "cookbooks/") {
			t.Errorf("registry step touched %s", ch.Path)
		}
	}
	if _, err := ApplyParts(split, m, PartMatrix|PartCookbook); err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{"examples/auto_deploy/model_registry/models.yaml", "docs/source/models/supported-models.md",
		"tensorrt_llm/_torch/auto_deploy/models/custom/__init__.py", "examples/auto_deploy/cookbooks/gemma_3_27b_it_trtllm_cookbook.ipynb"} {
		a, errA := os.ReadFile(filepath.Join(once, rel))
		b, errB := os.ReadFile(filepath.Join(split, rel))
		if errA != nil || errB != nil {
			t.Fatalf("read %s: %v, %v", rel, errA, errB)
		}
		if diff := cmp.Diff(string(b), string(a)); diff != "" {
			t.Errorf("%s (-two steps +one):\n%s", rel, diff)
		}
	}
}
