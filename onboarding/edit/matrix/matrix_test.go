package matrix

import (
	"errors"
	"strings"
	"testing"

	"github.com/nvidia/adbot/internal/fixtures"
	"github.com/nvidia/adbot/internal/golden"
	"github.com/nvidia/adbot/onboarding/edit/edittest"
)

func shared(t *testing.T) []byte {
	return fixtures.Read(t, "trtllm", "docs", "source", "models", "supported-models.md")
}

// perModel turns the fixture into the older style, where each AutoDeploy
// model's footnote links its own config YAML.
func perModel(t *testing.T) []byte {
	s := string(shared(t))
	old := "See [AD Configs](../../../examples/auto_deploy/model_registry/configs)."
	if !strings.Contains(s, old) {
		t.Fatal("fixture no longer has the shared AD footnote")
	}
	return []byte(strings.Replace(s, old, "See [AD config](../../../examples/auto_deploy/model_registry/configs/glm-4.7-flash.yaml).", 1))
}

func TestParse(t *testing.T) {
	tab, err := Parse("supported-models.md", shared(t))
	if err != nil {
		t.Fatal(err)
	}
	if tab.Style != Shared || tab.ADFootnote != "5" || tab.MaxFootnote != 15 || len(tab.Rows) != 54 {
		t.Errorf("style %s, AD footnote %q, max footnote %d, %d rows", tab.Style, tab.ADFootnote, tab.MaxFootnote, len(tab.Rows))
	}
	pm, err := Parse("x", perModel(t))
	if err != nil {
		t.Fatal(err)
	}
	if pm.Style != PerModel || pm.ADFootnote != "" {
		t.Errorf("per-model: style %s, AD footnote %q", pm.Style, pm.ADFootnote)
	}
}

func TestAddRow(t *testing.T) {
	tests := []struct {
		name     string
		in       func(*testing.T) []byte
		row      Row
		outcome  string
		footnote string
	}{
		{"present", shared, Row{Architecture: "Qwen3ForCausalLM", Model: "Qwen3", Example: "Qwen/Qwen3-8B", ADOnly: true}, "unchanged", ""},
		{"example_added", shared, Row{Architecture: "Qwen3MoeForCausalLM", Model: "Qwen3MoE", Example: "Qwen/Qwen3-235B-A22B"}, "example added", ""},
		{"shared_footnote", shared, Row{Architecture: "Ernie4_5ForCausalLM", Model: "ERNIE 4.5", Example: "baidu/ERNIE-4.5-0.3B-PT", ADOnly: true, ConfigFile: "ernie-4.5.yaml"}, "inserted", "5"},
		{"shared_last", shared, Row{Architecture: "Zamba2ForCausalLM", Model: "Zamba2", Example: "Zyphra/Zamba2-7B", ADOnly: true}, "inserted", "5"},
		{"per_model_footnote", perModel, Row{Architecture: "Ernie4_5ForCausalLM", Model: "ERNIE 4.5", Example: "baidu/ERNIE-4.5-0.3B-PT", ADOnly: true, ConfigFile: "ernie-4.5.yaml"}, "inserted", "16"},
		{"native", shared, Row{Architecture: "PhiMoEForCausalLM", Model: "Phi-3.5-MoE", Example: "microsoft/Phi-3.5-MoE-instruct"}, "inserted", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			old := tc.in(t)
			out, res, err := AddRow("supported-models.md", old, tc.row)
			if err != nil {
				t.Fatal(err)
			}
			if res.Outcome != tc.outcome || res.Footnote != tc.footnote {
				t.Errorf("got %+v, want outcome %q footnote %q", res, tc.outcome, tc.footnote)
			}
			again, r2, err := AddRow("supported-models.md", out, tc.row)
			if err != nil || r2.Outcome != "unchanged" || string(again) != string(out) {
				t.Errorf("second run: %+v %v", r2, err)
			}
			golden.Check(t, tc.name+".diff.golden", []byte(edittest.Diff(old, out)))
		})
	}
}

func TestAddRowNoFootnotes(t *testing.T) {
	in := "# Models\n\n| Architecture | Model | HuggingFace Example |\n| --- | --- | --- |\n| `AForCausalLM` | A | `a/a` |\n\nText.\n"
	out, res, err := AddRow("m.md", []byte(in), Row{Architecture: "BForCausalLM", Model: "B", Example: "b/b", ADOnly: true, ConfigFile: "b.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	want := "# Models\n\n| Architecture | Model | HuggingFace Example |\n| --- | --- | --- |\n| `AForCausalLM` | A | `a/a` |\n| `BForCausalLM` [^1] | B   | `b/b` |\n\n[^1]: Supported via the [AutoDeploy](../features/auto_deploy/auto-deploy.md) backend. See [AD config](../../../examples/auto_deploy/model_registry/configs/b.yaml).\n\nText.\n"
	if string(out) != want || res.Footnote != "1" {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
}

func TestAddRowErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		row  Row
		want string
	}{
		{"no table", "# Models\n", Row{Architecture: "A", Model: "A", Example: "a/a"}, "no supported-models table"},
		{"other columns", "| Name | Notes |\n| --- | --- |\n", Row{Architecture: "A", Model: "A", Example: "a/a"}, "columns"},
		{"bad class", "", Row{Architecture: "A B", Model: "A", Example: "a/a"}, "class name"},
		{"pipe in model", "", Row{Architecture: "A", Model: "A|B", Example: "a/a"}, "without |"},
		{"per-model without config", "| Architecture | Model | HuggingFace Example |\n| --- | --- | --- |\n", Row{Architecture: "A", Model: "A", Example: "a/a", ADOnly: true}, "config YAML"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := AddRow("m.md", []byte(tc.in), tc.row)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
	_, err := Parse("m.md", []byte("text\n"))
	if !errors.Is(err, ErrNoTable) || !strings.Contains(err.Error(), "m.md") {
		t.Errorf("Parse: %v", err)
	}
}

func FuzzAddRow(f *testing.F) {
	f.Add([]byte("| Architecture | Model | HuggingFace Example |\n| --- | --- | --- |\n| `AForCausalLM` [^5] | A | `a/a` |\n\n[^5]: Supported via the [AutoDeploy](x) backend. See [AD Configs](y).\n"))
	f.Add([]byte("| Architecture | Model | HuggingFace Example |\n|---|---|---|\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		row := Row{Architecture: "MForCausalLM", Model: "M", Example: "m/m", ADOnly: true, ConfigFile: "m.yaml"}
		out, _, err := AddRow("fuzz", b, row)
		if err != nil {
			return
		}
		again, res, err := AddRow("fuzz", out, row)
		if err != nil || res.Outcome != "unchanged" || string(again) != string(out) {
			t.Fatalf("not idempotent: %+v %v", res, err)
		}
	})
}
