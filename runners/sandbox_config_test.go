package runners

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nvidia/adbot/runners/sandbox"
)

func TestConfigSandbox(t *testing.T) {
	for _, k := range []string{"ADBOT_SANDBOX", "ADBOT_AGENT_EGRESS", "ADBOT_AGENT_ALLOWED_TOOLS", "ADBOT_AGENT_DISALLOWED_TOOLS"} {
		t.Setenv(k, "")
	}
	t.Setenv("ADBOT_RUNNER_NAME", "r1")
	t.Setenv("ADBOT_DATA_DIR", t.TempDir())
	t.Run("defaults", func(t *testing.T) {
		c, err := ConfigFromEnv()
		if err != nil {
			t.Fatal(err)
		}
		if c, err = c.withDefaults(); err != nil {
			t.Fatal(err)
		}
		got := []any{c.Sandbox, c.AgentEgress, c.AgentAllowedTools, c.AgentDisallowedTools}
		want := []any{sandbox.ModeBwrap, []sandbox.Rule{{Host: "api.anthropic.com", Port: 443}}, sandbox.DefaultAllowedTools, sandbox.DefaultDisallowedTools}
		if diff := cmp.Diff(got, want); diff != "" {
			t.Errorf("(-got +want):\n%s", diff)
		}
	})
	t.Run("set", func(t *testing.T) {
		t.Setenv("ADBOT_SANDBOX", "off")
		t.Setenv("ADBOT_AGENT_EGRESS", "huggingface.co, *.hf.co")
		t.Setenv("ADBOT_AGENT_ALLOWED_TOOLS", "Read,Bash(pytest:*)")
		t.Setenv("ADBOT_AGENT_DISALLOWED_TOOLS", "WebFetch")
		c, err := ConfigFromEnv()
		if err != nil {
			t.Fatal(err)
		}
		if c, err = c.withDefaults(); err != nil {
			t.Fatal(err)
		}
		got := []any{c.Sandbox, c.AgentEgress, c.AgentAllowedTools, c.AgentDisallowedTools}
		want := []any{sandbox.ModeOff,
			[]sandbox.Rule{{Host: "api.anthropic.com", Port: 443}, {Host: "huggingface.co", Port: 443}, {Host: "hf.co", Port: 443, Wildcard: true}},
			[]string{"Read", "Bash(pytest:*)"}, []string{"WebFetch"}}
		if diff := cmp.Diff(got, want); diff != "" {
			t.Errorf("(-got +want):\n%s", diff)
		}
	})
	for k, v := range map[string]string{
		"ADBOT_SANDBOX": "docker", "ADBOT_AGENT_EGRESS": "bad host", "ADBOT_AGENT_ALLOWED_TOOLS": "Bash(", "ADBOT_AGENT_DISALLOWED_TOOLS": ")",
	} {
		t.Run(k, func(t *testing.T) {
			t.Setenv(k, v)
			if _, err := ConfigFromEnv(); err == nil || !strings.Contains(err.Error(), k) {
				t.Errorf("%s=%q: err = %v, want one naming it", k, v, err)
			}
		})
	}
}
