package report

import (
	"strings"

	"github.com/nvidia/adbot/onboarding/pytest"
)

// TestRows turns a JUnit report into the test results table, one row per
// case. validates says what a test checks; when it is nil or returns "",
// the row says what the workflow's hierarchical levels (Phase 6) suggest
// from the test's name.
func TestRows(rep *pytest.Report, validates func(pytest.Case) string) []TestRow {
	if rep == nil {
		return nil
	}
	rows := make([]TestRow, 0, len(rep.Cases))
	for _, c := range rep.Cases {
		v := ""
		if validates != nil {
			v = validates(c)
		}
		if v == "" {
			v = Level(c.Name)
		}
		rows = append(rows, TestRow{Name: c.Name, Validates: v, Outcome: outcomeWord(c.Outcome)})
	}
	return rows
}

// Level guesses which of Phase 6's levels a test name belongs to.
func Level(name string) string {
	n := strings.ToLower(name)
	switch {
	case strings.Contains(n, "export"):
		return "export with dynamic batch and sequence dimensions"
	case strings.Contains(n, "full") || strings.Contains(n, "causal_lm") || strings.Contains(n, "model_equiv") || strings.Contains(n, "logits"):
		return "full model equivalence with HF"
	case strings.Contains(n, "layer"):
		return "decoder layer equivalence with HF"
	case strings.Contains(n, "attention") || strings.Contains(n, "attn"):
		return "attention block equivalence with HF"
	case strings.Contains(n, "moe") || strings.Contains(n, "expert"):
		return "MoE block equivalence with HF"
	case strings.Contains(n, "mlp"):
		return "MLP block equivalence with HF"
	case strings.Contains(n, "norm"):
		return "normalization block equivalence with HF"
	case strings.Contains(n, "rope") || strings.Contains(n, "rotary"):
		return "rotary embedding equivalence with HF"
	case strings.Contains(n, "block"):
		return "block equivalence with HF"
	case strings.Contains(n, "load") || strings.Contains(n, "state_dict") || strings.Contains(n, "weight"):
		return "weight loading and conversion"
	}
	return ""
}

func outcomeWord(o pytest.Outcome) string {
	switch o {
	case pytest.Passed:
		return "PASS"
	case pytest.Failed:
		return "FAIL"
	case pytest.Error:
		return "ERROR"
	case pytest.Skipped:
		return "SKIP"
	case pytest.XFailed:
		return "XFAIL"
	case pytest.XPassed:
		return "XPASS"
	}
	return strings.ToUpper(string(o))
}
