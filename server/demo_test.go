package server

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/nvidia/adbot/internal/fixtures"
	"github.com/nvidia/adbot/internal/standin"
)

// mapEnv is a demoEnv over a map.
func mapEnv(m map[string]string) demoEnv {
	return demoEnv{
		lookup: func(k string) (string, bool) { v, ok := m[k]; return v, ok },
		set:    func(k, v string) error { m[k] = v; return nil },
	}
}

func TestSetupDemo(t *testing.T) {
	if err := standin.CheckPython(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	tests := []struct {
		name string
		env  map[string]string
		// want holds the variables to check after setup; "<demo>" stands
		// for the demo folder.
		want map[string]string
	}{
		{
			name: "defaults",
			env:  map[string]string{"ADBOT_FIXTURES": ""},
			want: map[string]string{
				"ADBOT_GPUS": DemoGPUs, "ADBOT_AGENT_CMD": "<demo>/claude", "ADBOT_TRTLLM_REMOTE": "<demo>/trtllm.git",
				"ADBOT_DISK_FLOOR_GB": "0",
				"ADBOT_PASS_ENV":      "ADBOT_STANDIN_STATE,ADBOT_STANDIN_REVIEW,ADBOT_STANDIN_TESTS,ADBOT_STANDIN_E2E",
			},
		},
		{
			name: "the user's values stay",
			env:  map[string]string{"ADBOT_FIXTURES": fixtures.Root(), "ADBOT_GPUS": "none", "ADBOT_AGENT_CMD": "/opt/claude", "ADBOT_PASS_ENV": "HF_HOME,ADBOT_STANDIN_E2E"},
			want: map[string]string{
				"ADBOT_GPUS": "none", "ADBOT_AGENT_CMD": "/opt/claude", "ADBOT_TRTLLM_REMOTE": "<demo>/trtllm.git",
				"ADBOT_DISK_FLOOR_GB": "0",
				"ADBOT_PASS_ENV":      "HF_HOME,ADBOT_STANDIN_E2E,ADBOT_STANDIN_STATE,ADBOT_STANDIN_REVIEW,ADBOT_STANDIN_TESTS",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := t.TempDir()
			demo := filepath.Join(data, DemoDirName)
			var out bytes.Buffer
			if err := setupDemo(context.Background(), data, 8123, mapEnv(tt.env), &out); err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for k := range tt.want {
				got[k] = strings.ReplaceAll(tt.env[k], demo, "<demo>")
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("environment (-got +want):\n%s", diff)
			}
			for _, want := range []string{"What to do next", "http://localhost:8123" + WebhookRoute, "issues.opened.json", "built from"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("output lacks %q:\n%s", want, out.String())
				}
			}
			b, err := os.ReadFile(filepath.Join(demo, "issues.opened.json"))
			if err != nil || !json.Valid(b) {
				t.Errorf("payload: %v, valid %v", err, json.Valid(b))
			}
			// A second start reuses the remote, keeping what the first left in it.
			marker := filepath.Join(demo, standin.BareName, "adbot-test-marker")
			if err := os.WriteFile(marker, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			out.Reset()
			if err := setupDemo(context.Background(), data, 8123, mapEnv(tt.env), &out); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(marker); err != nil || !strings.Contains(out.String(), "(reused)") {
				t.Errorf("second start did not reuse the remote: %v\n%s", err, out.String())
			}
			if got := tt.env["ADBOT_PASS_ENV"]; strings.Count(got, "ADBOT_STANDIN_STATE") != 1 {
				t.Errorf("ADBOT_PASS_ENV after two starts: %q", got)
			}
		})
	}
}
