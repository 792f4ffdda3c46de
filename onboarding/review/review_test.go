package review

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/nvidia/adbot/internal/fixtures"
)

func TestParseFiles(t *testing.T) {
	tests := []struct {
		file     string
		want     *Review
		ok       bool
		sections []string
	}{
		{
			file: "pass.txt",
			ok:   true,
			want: &Review{Header: Pass, Passed: 6, Failed: 0, Total: 8, Items: []Item{
				{ID: "B1", Status: Pass, Section: "B. Self-Containment & Config", Evidence: "No `from .modeling_` imports found", Line: 4},
				{ID: "B2", Status: Pass, Section: "B. Self-Containment & Config", Location: "modeling_qwen3.py:12", Evidence: "Qwen3Config imported from transformers", Line: 5},
				{ID: "B3", Status: NA, Section: "B. Self-Containment & Config", Evidence: "Config available in transformers; no AutoConfig.register needed", Line: 6},
				{ID: "C1", Status: Pass, Section: "C. Ops & Compatibility", Location: "modeling_qwen3.py:88", Evidence: "torch.ops.auto_deploy.torch_attention", Line: 9},
				{ID: "C2", Status: Pass, Section: "C. Ops & Compatibility", Location: "modeling_qwen3.py:60-140", Evidence: "only torch_* ops", Line: 10},
				{ID: "C3", Status: Pass, Section: "C. Ops & Compatibility", Evidence: "No triton_/flashinfer_/trtllm ops found", Line: 11},
				{ID: "D1", Status: Pass, Section: "D. RoPE & MoE Conventions", Location: "modeling_qwen3.py:41", Evidence: `register_buffer("_ad_cos_cached", ...)`, Line: 14},
				{ID: "D4", Status: NA, Section: "D. RoPE & MoE Conventions", Evidence: "Not an MoE model", Line: 15},
			}},
			sections: []string{"B. Self-Containment & Config", "C. Ops & Compatibility", "D. RoPE & MoE Conventions"},
		},
		{
			file: "fail.txt",
			want: &Review{Header: Fail, Passed: 2, Failed: 2, Total: 4, Items: []Item{
				{ID: "A1", Status: Pass, Section: "A. Structure & Hierarchy", Location: "modeling_foo.py:45", Evidence: "FooPreTrainedModel(PreTrainedModel)", Line: 4},
				{ID: "A3", Status: Fail, Section: "A. Structure & Hierarchy", Location: "modeling_foo.py:120", Evidence: "forward(self, input_ids, attention_mask, ...) — missing position_ids", Line: 5},
				{ID: "G2", Status: Fail, Section: "G. Test File — Hierarchical Levels", Location: "test_foo_modeling.py:1", Evidence: "No layer equivalence test found", Line: 8},
				{ID: "G4", Status: Pass, Section: "G. Test File — Hierarchical Levels", Location: "test_foo_modeling.py:210", Evidence: "torch_export_to_gm with Dim.DYNAMIC", Line: 9},
			}, Fixes: []string{
				"A3 — Forward signature missing position_ids parameter (modeling_foo.py:120)",
				"G2 — No layer equivalence test found",
			}},
			sections: []string{"A. Structure & Hierarchy", "G. Test File — Hierarchical Levels"},
		},
		{
			file: "messy.md",
			want: &Review{Header: Fail, Passed: 2, Failed: 2, Total: 5, Items: []Item{
				{ID: "B1", Status: Pass, Section: "B. Self-Containment & Config", Location: "modeling_glm.py:3", Evidence: "only `from .mla_rope_utils import` is used", Line: 7},
				{ID: "B2", Status: Fail, Section: "B. Self-Containment & Config", Location: "modeling_glm.py:20", Evidence: "GlmConfig is redefined although transformers ships it", Line: 8},
				{ID: "B3", Status: NA, Section: "B. Self-Containment & Config", Evidence: "not needed", Line: 9},
				{ID: "C1", Status: Pass, Section: "C. Ops", Location: "modeling_glm.py:77", Evidence: "torch_mla used", Line: 15},
				{ID: "C8", Status: Fail, Section: "C. Ops", Location: "modeling_glm.py:101", Evidence: "repeat_kv on K/V", Line: 16},
			}, Fixes: []string{"B2 — import GlmConfig from transformers", "C8 — remove repeat_kv"}},
			sections: []string{"B. Self-Containment & Config", "C. Ops"},
		},
		{
			file: "inconsistent.txt",
			want: &Review{Header: Pass, Passed: 2, Failed: 0, Total: 2, Items: []Item{
				{ID: "F1", Status: Pass, Section: "F. Test File — Structure", Location: "test_x_modeling.py:10", Evidence: "small config", Line: 4},
				{ID: "F2", Status: Fail, Section: "F. Test File — Structure", Location: "test_x_modeling.py:40", Evidence: "test_export only checks isfinite", Line: 5},
			}, Problems: []string{
				"header says PASS but 1 item(s) FAIL: F2",
				"FAILED: 0/2 but 1 item(s) FAIL",
				"PASSED: 2/2 but 1 item(s) PASS",
			}},
			sections: []string{"F. Test File — Structure"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := ParseFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tt.want, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
			if got.OK() != tt.ok {
				t.Errorf("OK() = %v, want %v", got.OK(), tt.ok)
			}
			if diff := cmp.Diff(got.Sections(), tt.sections); diff != "" {
				t.Errorf("sections (-got +want):\n%s", diff)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	_, err := ParseFile(filepath.Join("testdata", "no-header.txt"))
	if err == nil || !strings.Contains(err.Error(), "no-header.txt: reviewer verdict: no \"REVIEW RESULT: PASS|FAIL\" line") {
		t.Errorf("no header: %v", err)
	}
	_, err = ParseFile(filepath.Join("testdata", "template-header.txt"))
	if err == nil || !strings.Contains(err.Error(), "template-header.txt: reviewer verdict line 1: REVIEW RESULT is neither PASS nor FAIL") {
		t.Errorf("template header: %v", err)
	}
}

func TestParseTolerance(t *testing.T) {
	tests := []struct {
		name, text string
		ok         bool
		problems   []string
	}{
		{"lower case, dash, no counts", "review result - pass\nb1 pass ok\n", true, []string{"no PASSED/FAILED counts"}},
		{"heading verdict", "# REVIEW RESULT: PASS\n=== A ===\nA1 PASSED a.py:1 — fine\nPASSED: 1/1\nFAILED: 0/1\n", true, nil},
		{"fail header without fail items", "REVIEW RESULT: FAIL\nA1 PASS x\nPASSED: 1/1\n", false, []string{"header says FAIL but no item FAILs"}},
		{"no items", "REVIEW RESULT: PASS\n", false, []string{"no checklist items found", "no PASSED/FAILED counts"}},
		{"duplicate item", "REVIEW RESULT: PASS\nA1 PASS x\nA1 PASS y\nPASSED: 2/2\nFAILED: 0/2\n", true, []string{"line 3: item A1 already given on line 2"}},
		{"marks and dashes", "REVIEW RESULT: PASS\n✅ A1: PASS — a.py:1 — ok\n- A2 — ✅ PASS - fine\n| C1 | ✅ PASS | a.py:2 | x |\nD4 N/A not MoE\nPASSED: 3/4\nFAILED: 0/4\n", true, nil},
		{"CRLF", "REVIEW RESULT: FAIL\r\nA1 FAIL a.py:3 — bad\r\nFAILED: 1/1\r\nFailed items requiring fixes:\r\n1. A1 — fix\r\n", false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse(tt.text)
			if err != nil {
				t.Fatal(err)
			}
			if r.OK() != tt.ok {
				t.Errorf("OK() = %v, want %v", r.OK(), tt.ok)
			}
			if diff := cmp.Diff(r.Problems, tt.problems, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("problems (-got +want):\n%s", diff)
			}
		})
	}
}

// TestParseAgentTemplate reads the output format written in the reviewer
// agent's own definition, with its "PASS | FAIL" header made a verdict.
func TestParseAgentTemplate(t *testing.T) {
	b := fixtures.Read(t, "trtllm", "dot-claude", "agents", "ad-onboard-reviewer.md")
	_, block, ok := strings.Cut(string(b), "## Output Format\n\n```text\n")
	if !ok {
		t.Fatal("no Output Format block in the agent definition")
	}
	block, _, _ = strings.Cut(block, "\n```\n")
	if _, err := Parse(block); err == nil {
		t.Error("the template's \"PASS | FAIL\" header parsed as a verdict")
	}
	block = strings.Replace(block, "REVIEW RESULT: PASS | FAIL", "REVIEW RESULT: FAIL", 1)
	r, err := Parse(block)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, it := range r.Items {
		ids = append(ids, it.ID+" "+string(it.Status))
	}
	if diff := cmp.Diff(ids, []string{"A1 PASS", "A2 PASS", "A3 FAIL", "A4 PASS", "B1 PASS", "B2 PASS", "B3 PASS"}); diff != "" {
		t.Errorf("items (-got +want):\n%s", diff)
	}
	if r.Passed != 22 || r.Failed != 4 || r.Total != 26 || len(r.Fixes) != 4 {
		t.Errorf("counts %d/%d of %d, %d fixes", r.Passed, r.Failed, r.Total, len(r.Fixes))
	}
	if r.Items[2].Evidence != "forward(self, input_ids, attention_mask, ...) — missing position_ids" {
		t.Errorf("A3 evidence %q", r.Items[2].Evidence)
	}
	if r.OK() {
		t.Error("a review with a FAIL item is OK")
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"pass.txt", "fail.txt", "messy.md", "inconsistent.txt"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, text string) {
		r, err := Parse(text)
		if err != nil {
			return
		}
		if r.OK() && len(r.FailedItems()) > 0 {
			t.Error("OK with FAIL items")
		}
		if r.OK() && r.Header != Pass {
			t.Error("OK without a PASS header")
		}
	})
}

func TestParseItem(t *testing.T) {
	tests := []struct {
		line string
		want Item
		ok   bool
	}{
		{"A1  PASS  modeling_foo.py:45 — FooPreTrainedModel", Item{ID: "A1", Status: Pass, Location: "modeling_foo.py:45", Evidence: "FooPreTrainedModel"}, true},
		{"✅ A1: PASS — a.py:1 — ok", Item{ID: "A1", Status: Pass, Location: "a.py:1", Evidence: "ok"}, true},
		{"- A2 — ❌ FAIL - b/c.py:7-9 - wrong", Item{ID: "A2", Status: Fail, Location: "b/c.py:7-9", Evidence: "wrong"}, true},
		{"1. BA2 N/A no fused experts", Item{ID: "BA2", Status: NA, Evidence: "no fused experts"}, true},
		{"g6 passed `test_x.py:88` second shape (2, 16)", Item{ID: "G6", Status: Pass, Location: "test_x.py:88", Evidence: "second shape (2, 16)"}, true},
		{"A1 is fine", Item{}, false},
		{"PASSED: 3/4", Item{}, false},
		{"NAME PASS", Item{}, false},
	}
	for _, tt := range tests {
		got, ok := parseItem(clean(tt.line))
		if ok != tt.ok {
			t.Errorf("parseItem(%q) ok = %v", tt.line, ok)
			continue
		}
		if diff := cmp.Diff(got, tt.want); diff != "" {
			t.Errorf("parseItem(%q) (-got +want):\n%s", tt.line, diff)
		}
	}
}
