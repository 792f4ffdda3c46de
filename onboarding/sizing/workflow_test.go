package sizing

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/nvidia/adbot/internal/fixtures"
)

// TestWorldSizeRuleMatchesWorkflow reads the rule from the workflow's
// SKILL.md and the registry README, so that a change upstream shows here.
func TestWorldSizeRuleMatchesWorkflow(t *testing.T) {
	skill := string(fixtures.Read(t, "trtllm", "dot-claude", "skills", "ad-model-onboard", "SKILL.md"))
	m := regexp.MustCompile(`\(1 for <(\d+)B, 2 for (\d+)-(\d+)B, 4 for (\d+)-(\d+)B, 8 for (\d+)B\+\)`).FindStringSubmatch(skill)
	if m == nil {
		t.Fatal("SKILL.md no longer states the world-size rule as '(1 for <2B, 2 for 2-15B, 4 for 20-80B, 8 for 80B+)'")
	}
	b := make([]float64, 0, 6)
	for _, s := range m[1:] {
		v, _ := strconv.ParseFloat(s, 64)
		b = append(b, v)
	}
	// Probe each stated range just inside its ends.
	probes := []struct {
		billions float64
		want     int
	}{
		{b[0] - 0.01, 1}, {b[1], 2}, {b[2], 2}, {b[3], 4}, {b[4] - 0.01, 4}, {b[5], 8}, {b[5] * 10, 8},
	}
	for _, p := range probes {
		if got, _ := WorldSize(int64(p.billions * 1e9)); got != p.want {
			t.Errorf("%.2fB: WorldSize %d, SKILL.md says %d", p.billions, got, p.want)
		}
	}
	// The gap the rule leaves open.
	if got, note := WorldSize(int64((b[2] + b[3]) / 2 * 1e9)); got != 4 || note == "" {
		t.Errorf("gap: %d %q", got, note)
	}
	readme := string(fixtures.Read(t, "trtllm", "examples", "auto_deploy", "model_registry", "README.md"))
	for _, row := range []string{`| 1 | \< 2B params |`, `| 2 | 2-15B params |`, `| 4 | 20-80B params |`, `| 8 | 80B+ params |`} {
		if !strings.Contains(readme, row) {
			t.Errorf("registry README lacks %q", row)
		}
	}
}

// TestFitMessageMatchesWorkflow checks the Step 0 message against SKILL.md's example.
func TestFitMessageMatchesWorkflow(t *testing.T) {
	skill := string(fixtures.Read(t, "trtllm", "dot-claude", "skills", "ad-model-onboard", "SKILL.md"))
	m := regexp.MustCompile(`Example message: "(This model requires ~X.*?)"`).FindStringSubmatch(skill)
	if m == nil {
		t.Fatal("SKILL.md has no Step 0 example message")
	}
	got := CheckFit(200e9, 4, []GPU{{MemTotal: 80e9}, {MemTotal: 80e9}}).Reason
	norm := func(s string) string {
		s = regexp.MustCompile(`~[0-9.]+ ?GB`).ReplaceAllString(s, "~X GB")
		s = regexp.MustCompile(`has [0-9.]+ ?GB`).ReplaceAllString(s, "has Y GB")
		s = regexp.MustCompile(`across \d+ GPUs`).ReplaceAllString(s, "across N GPUs")
		return strings.NewReplacer("~Xgb", "~X GB", "Ygb", "Y GB").Replace(s)
	}
	if norm(got) != norm(m[1]) {
		t.Errorf("message %q does not follow SKILL.md's %q", got, m[1])
	}
}
