package runners

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestPassedSecrets: passed-through variables whose names say they hold a
// secret are redacted; the others (paths, settings) are not.
func TestPassedSecrets(t *testing.T) {
	env := map[string]string{
		"HF_TOKEN":          "hf_secret_1",
		"ANTHROPIC_API_KEY": "sk-ant-secret_2",
		"OPENAI_KEY":        "sk-secret_3",
		"GITLAB_PAT":        "glpat-secret_4",
		"NGC_ACCESS_KEY":    "ngc_secret_5",
		"HF_HOME":           "/data/hf",
		"KEYBOARD_LAYOUT":   "us-intl",
		"PATH_EXTRA":        "/opt/bin",
	}
	r := &Runner{}
	for k, v := range env {
		t.Setenv(k, v)
		r.cfg.PassEnv = append(r.cfg.PassEnv, k)
	}
	got := map[string]bool{}
	for _, v := range r.passedSecrets() {
		got[v] = true
	}
	want := map[string]bool{"hf_secret_1": true, "sk-ant-secret_2": true, "sk-secret_3": true, "glpat-secret_4": true, "ngc_secret_5": true}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("redacted values (-got +want):\n%s", diff)
	}
}
