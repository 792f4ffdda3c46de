package initpy

import (
	"errors"
	"strings"
	"testing"

	"github.com/nvidia/adbot/internal/golden"
	"github.com/nvidia/adbot/onboarding/edit/edittest"
)

// upstream has the shape of TensorRT-LLM's models/custom/__init__.py (no
// copy of it is stored among the fixtures): sorted relative imports, then a
// multi-line __all__ tuple.
const upstream = `from .modeling_cohere import CohereForCausalLM
from .modeling_deepseek import DeepSeekV3ForCausalLM
from .modeling_glm4_moe_lite import Glm4MoeLiteForCausalLM
from .modeling_kimi_k2 import KimiK2ForCausalLM, KimiK25ForConditionalGeneration
from .modeling_nemotron_h import NemotronHForCausalLM
from .modeling_qwen3_5_moe import Qwen3_5MoeForCausalLM, Qwen3_5MoeForConditionalGeneration
from .modeling_qwen3_moe import Qwen3MoeForCausalLM

__all__ = (
    "CohereForCausalLM",
    "DeepSeekV3ForCausalLM",
    "Glm4MoeLiteForCausalLM",
    "KimiK2ForCausalLM",
    "KimiK25ForConditionalGeneration",
    "NemotronHForCausalLM",
    "Qwen3_5MoeForCausalLM",
    "Qwen3_5MoeForConditionalGeneration",
    "Qwen3MoeForCausalLM",
)
`

func TestAdd(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		module string
		names  []string
		change bool
	}{
		{"new_middle", upstream, "modeling_mistral", []string{"MistralForCausalLM"}, true},
		{"new_first", upstream, ".modeling_afmoe", []string{"AfmoeForCausalLM"}, true},
		{"new_last", upstream, "modeling_starcoder2", []string{"Starcoder2ForCausalLM"}, true},
		{"present", upstream, "modeling_nemotron_h", []string{"NemotronHForCausalLM"}, false},
		{"extend_import", upstream, "modeling_qwen3_moe", []string{"Qwen3MoeForConditionalGeneration"}, true},
		{"long_import", upstream, "modeling_qwen3_vl_moe", []string{"Qwen3VLMoeForConditionalGeneration", "Qwen3VLMoeTextForCausalLM"}, true},
		{"inline_list", "from .modeling_a import A\n\n__all__ = [\"A\"]\n", "modeling_b", []string{"B"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, changed, err := Add("__init__.py", []byte(tc.in), tc.module, tc.names)
			if err != nil {
				t.Fatal(err)
			}
			if changed != tc.change {
				t.Errorf("changed %v, want %v", changed, tc.change)
			}
			again, ch2, err := Add("__init__.py", out, tc.module, tc.names)
			if err != nil || ch2 || string(again) != string(out) {
				t.Errorf("not idempotent: %v %v", ch2, err)
			}
			golden.Check(t, tc.name+".diff.golden", []byte(edittest.Diff([]byte(tc.in), out)))
		})
	}
}

func TestAddErrors(t *testing.T) {
	tests := []struct {
		name, in, module string
		names            []string
		want             string
	}{
		{"no __all__", "from .a import A\n", "modeling_b", []string{"B"}, "no __all__"},
		{"unclosed __all__", "__all__ = (\n    \"A\",\n", "modeling_b", []string{"B"}, "not closed"},
		{"unclosed import", "from .a import (\n    A,\n", "modeling_b", []string{"B"}, "closing parenthesis"},
		{"bad module", upstream, "../x", []string{"B"}, "not a module name"},
		{"bad class", upstream, "modeling_b", []string{"B; import os"}, "not a class name"},
		{"no names", upstream, "modeling_b", nil, "no names"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Add("pkg/__init__.py", []byte(tc.in), tc.module, tc.names)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "pkg/__init__.py") {
				t.Errorf("got %v, want an error naming the file with %q", err, tc.want)
			}
		})
	}
	if _, err := Parse("x", []byte("")); !errors.Is(err, ErrNoAll) {
		t.Errorf("empty: %v", err)
	}
}

func TestParseParenthesized(t *testing.T) {
	f, err := Parse("x", []byte("from .modeling_x import (\n    A,\n    B,\n)\n\n__all__ = ('A', 'B')\n"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(f.Imports[".modeling_x"], ",") != "A,B" || strings.Join(f.All, ",") != "A,B" {
		t.Errorf("%+v", f)
	}
}

func FuzzAdd(f *testing.F) {
	f.Add([]byte(upstream))
	f.Add([]byte("from .modeling_a import (\n    A,\n)\n__all__ = ['A']\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, _, err := Add("fuzz", b, "modeling_m", []string{"MForCausalLM"})
		if err != nil {
			return
		}
		again, changed, err := Add("fuzz", out, "modeling_m", []string{"MForCausalLM"})
		if err != nil || changed || string(again) != string(out) {
			t.Fatalf("not idempotent: %v %v\n%s", changed, err, out)
		}
	})
}
