package jobs_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nvidia/adbot/bus"
)

// TestOnboardSizesByConfig: a model the Hub gives no safetensors total for is
// sized from its config.json at the model's revision; the status comment says
// where the figure came from, or why there is none.
func TestOnboardSizesByConfig(t *testing.T) {
	tests := []struct {
		model      string
		wantParams int64 // 0: unknown
		wantSource string
		wantGPUs   int
		wantSize   string // in the status comment's Size row
	}{
		{"Qwen/Qwen3-0.6B", 751632384, "safetensors", 1, "| Size | 751.6M parameters (Hub safetensors) |"},
		{"meta-llama/Llama-3.1-8B", 8030261248, "config", 2, "| Size | 8.03B parameters (estimated from config.json) |"},
		{"mistralai/Mixtral-8x7B-v0.1", 46702792704, "config", 4, "| Size | 46.7B parameters (estimated from config.json) |"},
		{"deepseek-ai/DeepSeek-V3", 684489845504, "config", 8, "| Size | 684.49B parameters (estimated from config.json) |"},
		{"org/unknown-arch", 0, "", 8, `| Size | unknown (the Hub reports no safetensors parameter count and cannot estimate parameters of FancyForCausalLM (model_type "fancy"): the estimator knows only `},
		{"org/nosize", 0, "", 8, "| Size | unknown (the Hub reports no safetensors parameter count and the repository has no config.json) |"},
		// The Hub's message once went into the status comment as it came.
		{"org/cfg-forbidden", 0, "", 8, "| Size | unknown (the Hub reports no safetensors parameter count and the Hub answered 403 for its config.json) |"},
	}
	r := newRig(t, -1)
	for i, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			issue := i + 1
			before := len(r.hub.fileRequests())
			r.send(onboard(issue, maint, tt.model))
			j := r.job(issue)
			if j == nil {
				t.Fatal("no job")
			}
			got := []any{j.Params, j.ParamsSource, j.GPUs, j.Status, j.ParamsNote != ""}
			want := []any{tt.wantParams, tt.wantSource, tt.wantGPUs, bus.StatusQueued, tt.wantParams == 0}
			if diff := cmp.Diff(got, want); diff != "" {
				t.Errorf("params, source, GPUs, status, has note (-got +want):\n%s", diff)
			}
			if n := len(r.cycles(tt.wantGPUs)); n == 0 {
				t.Errorf("no cycle on %d GPUs", tt.wantGPUs)
			}
			sc, _ := r.gh.Comment(j.StatusCommentID)
			if !strings.Contains(sc.Body, tt.wantSize) {
				t.Errorf("status comment lacks %q:\n%s", tt.wantSize, sc.Body)
			}
			if tt.wantParams == 0 && !strings.Contains(sc.Body, "| GPUs needed | 8 (size unknown: assumed the largest) |") {
				t.Errorf("status comment does not explain the GPU count:\n%s", sc.Body)
			}
			// config.json is asked for only without a safetensors total, at the model's commit.
			files := r.hub.fileRequests()[before:]
			var wantFiles []string
			if tt.wantSource != "safetensors" {
				wantFiles = []string{"/" + tt.model + "/resolve/" + hubSHA + "/config.json"}
			}
			if diff := cmp.Diff(files, wantFiles); diff != "" {
				t.Errorf("file requests (-got +want):\n%s", diff)
			}
		})
	}
}

// TestConfigFetchRetried: a Hub failing to serve config.json (5xx) does not
// size the model as unknown: the command is tried again.
func TestConfigFetchRetried(t *testing.T) {
	r := newRig(t, -1)
	r.hub.fileDown.Store(2)
	r.send(onboard(1, maint, "meta-llama/Llama-3.1-8B"))
	j := r.job(1)
	if j == nil || j.GPUs != 2 || j.ParamsSource != "config" || j.Params != 8030261248 {
		t.Fatalf("job after config.json failed twice = %+v, want sized from config.json", j)
	}
	if n := len(r.hub.fileRequests()); n != 3 {
		t.Errorf("%d config.json requests, want 3", n)
	}
	if n := len(r.bodies(1)); n != 1 {
		t.Errorf("%d comments, want the status comment only", n)
	}
}
