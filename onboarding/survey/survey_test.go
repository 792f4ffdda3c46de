package survey

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/nvidia/adbot/internal/fixtures"
)

// checkout lays out a TensorRT-LLM checkout in a temporary folder from the
// fixtures (the upstream paths, .claude for dot-claude), plus custom model
// files written here (no Python source is stored among the fixtures).
func checkout(t *testing.T, variant string) string {
	t.Helper()
	root := fixtures.Path(t, "trtllm")
	dir := t.TempDir()
	copyTree := func(from, to string) {
		err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(from, p)
			dst := filepath.Join(to, rel)
			if d.IsDir() {
				return os.MkdirAll(dst, 0o755)
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(dst, b, 0o644)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	copyTree(filepath.Join(root, "examples"), filepath.Join(dir, "examples"))
	copyTree(filepath.Join(root, "docs"), filepath.Join(dir, "docs"))
	copyTree(filepath.Join(root, "dot-claude"), filepath.Join(dir, ".claude"))
	if variant != "" {
		copyTree(filepath.Join(root, "_variants", variant), dir)
	}
	write := func(rel, s string) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(CustomDir+"/modeling_qwen3_moe.py", "class Qwen3MoeForCausalLM(Qwen3MoePreTrainedModel):\n    pass\n\n\nAutoModelForCausalLMFactory.register_custom_model_cls(\"Qwen3MoeConfig\", Qwen3MoeForCausalLM)\n")
	write(CustomDir+"/modeling_deepseek.py", "class DeepSeekV3ForCausalLM(nn.Module):\n    pass\n\n\nAutoModelForCausalLMFactory.register_custom_model_cls(\"DeepseekV3Config\", DeepSeekV3ForCausalLM)\n")
	write(CustomDir+"/modeling_nemotron_h.py", "    model_type = \"nemotron_h\"\n")
	write(CustomDir+"/__init__.py", "from .modeling_deepseek import DeepSeekV3ForCausalLM\nfrom .modeling_qwen3_moe import Qwen3MoeForCausalLM\n\n__all__ = (\n    \"DeepSeekV3ForCausalLM\",\n    \"Qwen3MoeForCausalLM\",\n)\n")
	write(TestsDirOld+"/test_glm4_moe_lite_modeling.py", "")
	return dir
}

func TestInspect(t *testing.T) {
	c, err := Inspect(checkout(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	if c.Registry != "examples/auto_deploy/model_registry/models.yaml" || c.LayoutS != "yaml_extra" || c.WorldSizeKey != "tensor_parallel_size" || c.TestsDir != TestsDirOld {
		t.Errorf("%+v", c)
	}
	v, err := Inspect(checkout(t, "4e71d888b5837ee654c7250bd23be593f71996b6"))
	if err != nil {
		t.Fatal(err)
	}
	if v.WorldSizeKey != "world_size" {
		t.Errorf("variant world size key %q", v.WorldSizeKey)
	}
	if _, err := Inspect(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no model registry") {
		t.Errorf("empty folder: %v", err)
	}
}

func TestSurvey(t *testing.T) {
	dir := checkout(t, "")
	tests := []struct {
		name        string
		m           Model
		known       []string
		wantMembers []string // name:status:world size
		wantCode    []string
		covered     bool
	}{
		{
			name:  "qwen3 moe",
			m:     Model{ID: "Qwen/Qwen3-30B-A3B", Architecture: "Qwen3MoeForCausalLM", ModelType: "qwen3_moe"},
			known: []string{"Qwen/Qwen3-0.6B", "Qwen/Qwen3-72B-Imaginary"},
			wantMembers: []string{
				"Qwen/Qwen3-0.6B:registered:1", "Qwen/Qwen3-4B:registered:1", "Qwen/Qwen3-8B:registered:2",
				"Qwen/Qwen3-Coder-30B-A3B-Instruct:registered:4", "Qwen/Qwen3-235B-A22B-Instruct-2507:registered:8",
				"Qwen/Qwen3-30B-A3B:registered:4", "Qwen/Qwen3-235B-A22B:registered:8", "Qwen/Qwen3-VL-8B-Instruct:disabled:8",
				"Qwen/Qwen3-Next-80B-A3B-Instruct:disabled:0", "Qwen/Qwen3-4B-Instruct-2507:registered:1", "Qwen/Qwen3-1.7B:registered:1",
				"Qwen/Qwen3-32B:registered:4", "Qwen/Qwen3-14B:registered:4", "Qwen/Qwen3-30B-A3B-Instruct-2507:registered:8",
				"Qwen/Qwen3-0.6B-FP8:disabled:1", "Qwen/Qwen3-VL-2B-Instruct:disabled:2", "Qwen/Qwen3-VL-30B-A3B-Instruct:disabled:4",
				"Qwen/Qwen3-72B-Imaginary:missing:0",
			},
			wantCode: []string{
				"tensorrt_llm/_torch/auto_deploy/models/custom/modeling_qwen3_moe.py:1:defines Qwen3MoeForCausalLM",
				"tensorrt_llm/_torch/auto_deploy/models/custom/modeling_qwen3_moe.py:5:registers Qwen3MoeConfig -> Qwen3MoeForCausalLM",
				"tensorrt_llm/_torch/auto_deploy/models/custom/__init__.py:2:__init__ imports Qwen3MoeForCausalLM from .modeling_qwen3_moe",
			},
			covered: true,
		},
		{
			name: "deepseek via config class",
			m:    Model{ID: "deepseek-ai/DeepSeek-V3", Architecture: "DeepseekV3ForCausalLM", ModelType: "deepseek_v3", ConfigClass: ConfigClassOf("DeepseekV3ForCausalLM", map[string]any{"AutoConfig": "configuration_deepseek.DeepseekV3Config"})},
			wantMembers: []string{
				"deepseek-ai/DeepSeek-V3:disabled:8",
			},
			wantCode: []string{
				"tensorrt_llm/_torch/auto_deploy/models/custom/modeling_deepseek.py:5:registers DeepseekV3Config -> DeepSeekV3ForCausalLM",
				"tensorrt_llm/_torch/auto_deploy/models/custom/__init__.py:1:__init__ imports DeepSeekV3ForCausalLM from .modeling_deepseek",
			},
			covered: true,
		},
		{
			name:        "nemotron-h by model_type only",
			m:           Model{ID: "nvidia/Nemotron-H-56B-Base-8K", Architecture: "NemotronHForCausalLM", ModelType: "nemotron_h"},
			wantMembers: []string{"nvidia/Nemotron-H-8B-Base-8K:registered:2", "nvidia/Nemotron-H-47B-Reasoning-128K:registered:4", "nvidia/Nemotron-H-8B-Reasoning-128K:registered:2", "nvidia/Nemotron-H-56B-Base-8K:missing:0"},
			wantCode:    []string{"tensorrt_llm/_torch/auto_deploy/models/custom/modeling_nemotron_h.py:1:model_type nemotron_h"},
		},
		{
			name:        "unknown family",
			m:           Model{ID: "acme/Rocket-7B", Architecture: "RocketForCausalLM", ModelType: "rocket"},
			wantMembers: []string{"acme/Rocket-7B:missing:0"},
			wantCode:    []string{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := Survey(dir, tc.m, tc.known)
			if err != nil {
				t.Fatal(err)
			}
			var members, code []string
			for _, m := range rep.Members {
				members = append(members, m.Name+":"+string(m.Status)+":"+itoa(m.WorldSize))
			}
			code = []string{}
			for _, c := range rep.Code {
				code = append(code, c.File+":"+itoa(c.Line)+":"+c.What)
			}
			if diff := cmp.Diff(members, tc.wantMembers); diff != "" {
				t.Errorf("members (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(code, tc.wantCode); diff != "" {
				t.Errorf("code (-got +want):\n%s", diff)
			}
			if rep.Covered != tc.covered {
				t.Errorf("covered %v", rep.Covered)
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestSurveyBrokenRegistry(t *testing.T) {
	dir := checkout(t, "")
	p := filepath.Join(dir, "examples/auto_deploy/model_registry/models.yaml")
	if err := os.WriteFile(p, []byte("models:\n- name: a/b\n  config_id: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Survey(dir, Model{ID: "a/b"}, nil)
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "no yaml_extra") {
		t.Errorf("got %v, want an error naming %s", err, p)
	}
}

// TestSurveyReadsOnlyConfigsFolder: a config name in the registry that
// leads out of the configs folder (here to the checkout's root) is not read
// for the world size.
func TestSurveyReadsOnlyConfigsFolder(t *testing.T) {
	dir := checkout(t, "")
	if err := os.WriteFile(filepath.Join(dir, "outside.yaml"), []byte("world_size: 7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "examples/auto_deploy/model_registry/models.yaml")
	reg := "models:\n- name: a/b\n  config_id: x\n  yaml_extra: ['../../../../outside.yaml']\n- name: a/b-2\n  config_id: x\n  yaml_extra: ['../../../../examples/../outside.yaml']\n"
	if err := os.WriteFile(p, []byte(reg), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := Survey(dir, Model{ID: "a/b"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range rep.Members {
		if m.WorldSize != 0 {
			t.Errorf("%s: world size %d read from a file outside the configs folder", m.Name, m.WorldSize)
		}
	}
	if len(rep.Members) != 2 {
		t.Errorf("members %+v, want a/b and a/b-2", rep.Members)
	}
}

func TestConfigClassOf(t *testing.T) {
	tests := []struct {
		arch string
		am   map[string]any
		want string
	}{
		{"Qwen3ForCausalLM", nil, "Qwen3Config"},
		{"Gemma3ForConditionalGeneration", nil, "Gemma3Config"},
		{"PhiModel", nil, "PhiConfig"},
		{"DeepseekV3ForCausalLM", map[string]any{"AutoConfig": "configuration_deepseek.DeepseekV3Config"}, "DeepseekV3Config"},
		{"Weird", nil, ""},
	}
	for _, tc := range tests {
		if got := ConfigClassOf(tc.arch, tc.am); got != tc.want {
			t.Errorf("ConfigClassOf(%s) = %q, want %q", tc.arch, got, tc.want)
		}
	}
}
