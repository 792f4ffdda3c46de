package registry

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nvidia/adbot/internal/fixtures"
	"github.com/nvidia/adbot/internal/golden"
	"github.com/nvidia/adbot/onboarding/edit"
	"github.com/nvidia/adbot/onboarding/edit/edittest"
	"gopkg.in/yaml.v3"
)

func legacy(t *testing.T) []byte {
	return fixtures.Read(t, "trtllm", "examples", "auto_deploy", "model_registry", "models.yaml")
}

// internal builds an Internal-layout models.yaml from the registry README's
// own example (no such models.yaml is stored among the fixtures).
func internal(t *testing.T) []byte {
	return readmeExample(t, "trtllm", "examples", "auto_deploy", "model_registry", "README.md")
}

// variantReadme builds a Legacy registry from the older README's example
// (fixtures/trtllm/_variants/f2ab89fb...), whose lists are unquoted and
// whose entries have no config_id.
func variantReadme(t *testing.T) []byte {
	return readmeExample(t, "trtllm", "_variants", "f2ab89fbf7560956abe0e738e826b32eee0f43e1", "examples", "auto_deploy", "model_registry", "README.md")
}

// readmeExample returns the example registry (the yaml block that starts
// with version: '2.0') of the registry README at fixture path rel.
func readmeExample(t *testing.T, rel ...string) []byte {
	t.Helper()
	readme := string(fixtures.Read(t, rel...))
	m := regexp.MustCompile("(?s)```yaml\n(version: '2.0'\n.*?)```").FindStringSubmatch(readme)
	if m == nil {
		t.Fatalf("%s has no example registry", rel[len(rel)-1])
	}
	return []byte(m[1])
}

func TestParseLegacy(t *testing.T) {
	r, err := Parse("models.yaml", legacy(t))
	if err != nil {
		t.Fatal(err)
	}
	if r.Layout != Legacy {
		t.Errorf("layout %v", r.Layout)
	}
	var active, off int
	for _, e := range r.Entries {
		if e.Active {
			active++
		} else {
			off++
		}
	}
	t.Logf("%d active, %d commented out", active, off)
	if active != 138 {
		t.Errorf("%d active entries, want 138 (fixtures/trtllm/SOURCES.md)", active)
	}
	tests := []struct {
		name    string
		active  bool
		cid     string
		ws      int
		section string
		reason  string
	}{
		{"zai-org/GLM-5", true, "glm_5", 8, "GLM-5 (Feb 2026)", ""},
		{"Qwen/Qwen3-8B", true, "default_ws_2", 2, "", ""},
		{"google/gemma-3-27b-it", false, "multimodal", 2, "", "TypeError: UserError.__init__() missing 1 required positional argument: 'msg'"},
		{"stepfun-ai/Step-3.7-Flash", true, "step_3_7_flash", 0, "StepFun Step-3.7-Flash (Feb 2026)", ""},
		{"nvidia/NVIDIA-Nemotron-3-Super-120B-A12B-BF16", false, "super_v3_mtp", 8, "", "OOM during AutoDeploy run."},
		{"moonshotai/Kimi-K2.5", false, "kimi_k2", 0, "Kimi-K2.5 (Jan 2026)", "TypeError: 'NoneType' object is not subscriptable"},
	}
	for _, tc := range tests {
		es := r.Find(tc.name)
		if len(es) == 0 {
			t.Errorf("%s not found", tc.name)
			continue
		}
		e := es[0]
		got := []any{e.Active, e.ConfigID, e.WorldSize(), e.Section, e.Reason}
		want := []any{tc.active, tc.cid, tc.ws, tc.section, tc.reason}
		if diff := cmp.Diff(got, want); diff != "" {
			t.Errorf("%s (-got +want):\n%s", tc.name, diff)
		}
	}
}

func TestParseInternal(t *testing.T) {
	r, err := Parse("models.yaml", internal(t))
	if err != nil {
		t.Fatal(err)
	}
	if r.Layout != Internal || len(r.Entries) != 2 {
		t.Fatalf("layout %v, %d entries", r.Layout, len(r.Entries))
	}
	e := r.Entries[1]
	if e.WorldSize() != 4 || !cmp.Equal(e.ADDefaults, []string{"ad_base.yaml", "llama3_3_70b_ad.yaml"}) {
		t.Errorf("entry %+v", e)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"not YAML", "models: [\n", "parse registry bad.yaml"},
		{"no models", "version: '2.0'\n", "no top-level \"models\""},
		{"models not a list", "models: 3\n", "not a list of entries"},
		{"entry without configs", "models:\n- name: a/b\n  config_id: x\n", "no yaml_extra"},
		{"entry without name", "models:\n- config_id: x\n  yaml_extra: [a.yaml]\n", "entries as text"},
		{"list of numbers", "models:\n- name: a/b\n  yaml_extra: [1]\n", "not a file name"},
		{"bad world size", "models:\n- name: a/b\n  world_size: two\n  ad_defaults: [a.yaml]\n", "world_size"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("bad.yaml", []byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "bad.yaml") {
				t.Errorf("got %v, want an error naming bad.yaml and containing %q", err, tc.want)
			}
		})
	}
	_, err := Parse("x", []byte("version: 1\n"))
	if !errors.Is(err, ErrNotRegistry) {
		t.Errorf("got %v, want ErrNotRegistry", err)
	}
}

func TestFamilyStem(t *testing.T) {
	tests := map[string]string{
		"Qwen/Qwen3-30B-A3B":                  "Qwen3",
		"Qwen/Qwen3-0.6B":                     "Qwen3",
		"meta-llama/Llama-3.1-8B-Instruct":    "Llama-3.1",
		"mistralai/Mixtral-8x7B-v0.1":         "Mixtral",
		"openai/gpt-oss-20b":                  "gpt-oss",
		"deepseek-ai/DeepSeek-V3":             "DeepSeek-V3",
		"microsoft/Phi-3-mini-128k-instruct":  "Phi-3-mini",
		"nvidia/Nemotron-H-56B-Base-8K":       "Nemotron-H",
		"google/gemma-3-27b-it":               "gemma-3",
		"zai-org/GLM-5":                       "GLM-5",
		"HuggingFaceTB/SmolLM2-135M-Instruct": "SmolLM2",
		"google/gemma-3n-E2B-it":              "gemma-3n",
	}
	for id, want := range tests {
		if got := FamilyStem(id); got != want {
			t.Errorf("FamilyStem(%s) = %q, want %q", id, got, want)
		}
	}
	if !SameFamily("Qwen/Qwen3-8B", "nvidia/Qwen3-235B-A22B-FP8") || SameFamily("Qwen/Qwen3-8B", "Qwen/Qwen3.5-27B") {
		t.Error("SameFamily")
	}
}

var day = time.Date(2026, time.November, 27, 0, 0, 0, 0, time.UTC)

func TestAddEntry(t *testing.T) {
	tests := []struct {
		name    string
		in      func(*testing.T) []byte
		entry   NewEntry
		outcome Outcome
	}{
		{"present", legacy, NewEntry{Name: "Qwen/Qwen3-8B", WorldSize: 2}, Unchanged},
		{"update", legacy, NewEntry{Name: "Qwen/Qwen3-8B", WorldSize: 4}, Updated},
		{"reactivate", legacy, NewEntry{Name: "google/gemma-3-27b-it", WorldSize: 4, ModelConfig: "gemma-3-27b-it.yaml"}, Reactivated},
		{"family", legacy, NewEntry{Name: "Qwen/Qwen3-0.6B-Base", WorldSize: 1}, Inserted},
		{"family with config", legacy, NewEntry{Name: "zai-org/GLM-5-Air", WorldSize: 4, ModelConfig: "glm_5_air.yaml"}, Inserted},
		{"new family", legacy, NewEntry{Name: "acme/Rocket-7B-Instruct", WorldSize: 2, ModelConfig: "rocket-7b.yaml", Date: day}, NewSection},
		{"variant unquoted", variantReadme, NewEntry{Name: "meta-llama/Llama-3.1-70B-Instruct", WorldSize: 4}, Inserted},
		{"variant update", variantReadme, NewEntry{Name: "meta-llama/Llama-3.3-70B-Instruct", WorldSize: 8, ModelConfig: "llama-3.3-70b.yaml"}, Updated},
		{"internal present", internal, NewEntry{Name: "meta-llama/Llama-3.1-8B-Instruct", WorldSize: 2}, Unchanged},
		{"internal family", internal, NewEntry{Name: "meta-llama/Llama-3.1-70B-Instruct", WorldSize: 4}, Inserted},
		{"internal new family", internal, NewEntry{Name: "acme/Rocket-7B", WorldSize: 2, Date: day}, NewSection},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			old := tc.in(t)
			out, outcome, err := AddEntry("models.yaml", old, tc.entry)
			if err != nil {
				t.Fatal(err)
			}
			if outcome != tc.outcome {
				t.Errorf("outcome %q, want %q", outcome, tc.outcome)
			}
			// Idempotent.
			again, o2, err := AddEntry("models.yaml", out, tc.entry)
			if err != nil || o2 != Unchanged || string(again) != string(out) {
				t.Errorf("second run: %q, %v, changed %v", o2, err, string(again) != string(out))
			}
			// Still YAML, with the entry in it.
			var doc struct {
				Models []map[string]any `yaml:"models"`
			}
			if err := yaml.Unmarshal(out, &doc); err != nil {
				t.Fatal(err)
			}
			found := false
			for _, m := range doc.Models {
				if m["name"] == tc.entry.Name {
					found = true
				}
			}
			if !found {
				t.Errorf("%s not among the models YAML reads", tc.entry.Name)
			}
			golden.Check(t, "add_"+strings.ReplaceAll(tc.name, " ", "_")+".diff.golden", []byte(edittest.Diff(old, out)))
		})
	}
}

func TestAddEntryErrors(t *testing.T) {
	for _, n := range []NewEntry{{Name: "", WorldSize: 1}, {Name: "a/b c", WorldSize: 1}, {Name: "a/b", WorldSize: 0},
		// YAML that is not a plain name: an alias, an anchor, a tag, a carriage return, a flow separator.
		{Name: "a/*x", WorldSize: 1}, {Name: "&a/b", WorldSize: 1}, {Name: "!!binary a/b", WorldSize: 1}, {Name: "a/b\r", WorldSize: 1}, {Name: "a/b,c", WorldSize: 1}} {
		if _, _, err := AddEntry("m.yaml", legacy(t), n); err == nil {
			t.Errorf("%+v: no error", n)
		}
	}
	if _, _, err := AddEntry("m.yaml", []byte("{not yaml"), NewEntry{Name: "a/b", WorldSize: 1}); err == nil || !strings.Contains(err.Error(), "m.yaml") {
		t.Errorf("bad file: %v", err)
	}
}

func TestAddEntryFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "models.yaml")
	if err := os.WriteFile(path, legacy(t), 0o644); err != nil {
		t.Fatal(err)
	}
	n := NewEntry{Name: "Qwen/Qwen3-0.6B-Base", WorldSize: 1}
	for i, want := range []bool{true, false} {
		changed, err := edit.File(path, false, func(old []byte) ([]byte, bool, error) {
			out, o, err := AddEntry(path, old, n)
			return out, o != Unchanged, err
		})
		if err != nil || changed != want {
			t.Errorf("run %d: changed %v, %v; want %v", i, changed, err, want)
		}
	}
	// A broken file is left as it was.
	if err := os.WriteFile(path, []byte("models: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := edit.File(path, false, func(old []byte) ([]byte, bool, error) {
		out, o, err := AddEntry(path, old, n)
		return out, o != Unchanged, err
	})
	if err == nil {
		t.Fatal("no error for a broken registry")
	}
	if b, _ := os.ReadFile(path); string(b) != "models: [\n" {
		t.Errorf("broken file rewritten: %q", b)
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Errorf("left files behind: %v", ents)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("models:\n- name: a/b\n  config_id: x\n  yaml_extra: ['dashboard_default.yaml', 'world_size_1.yaml']\n# err\n# - name: c/d\n#   yaml_extra: [a.yaml]\n"))
	f.Add([]byte("version: '2.0'\nmodels:\n- name: a/b\n  world_size: 2\n  ad_defaults: ['ad_base.yaml']\n  user_configs: ['dashboard_default.yaml']\n\n# --- X (Jan 2026) ---\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Parse("fuzz", b)
		if err != nil {
			return
		}
		out, _, err := AddEntry("fuzz", b, NewEntry{Name: "fuzz/Model-1B", WorldSize: 1, Date: day})
		if err != nil {
			return
		}
		if _, err := Parse("fuzz", out); err != nil {
			t.Fatalf("edit broke a registry of %d entries: %v", len(r.Entries), err)
		}
	})
}
