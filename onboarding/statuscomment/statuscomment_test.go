package statuscomment

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/internal/golden"
)

var t0 = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

func TestRender(t *testing.T) {
	queued := &bus.Job{
		Key: "NVIDIA.TensorRT-LLM.12", Owner: "NVIDIA", Repo: "TensorRT-LLM", Issue: 12,
		ModelID: "Qwen/Qwen3-0.6B", Revision: "c1899de289a04d12100db370d81485cdf75e47ca", Params: 751632384,
		GPUs: 1, Status: bus.StatusQueued, Cycle: 1, Created: t0, Updated: t0,
	}
	running := *queued
	running.Status, running.Runner, running.RunnerGPUs = bus.StatusRunning, "dgx-07", []int{2}
	running.Started = t0.Add(2 * time.Minute)
	running.Posted = map[string]int64{"1/gather/done": 1, "1/survey/done": 2, "1/model/done": 3, "0/tests/done": 9}
	running.BudgetUSD = 3.5

	review := running
	review.Status, review.Runner, review.RunnerGPUs = bus.StatusWaitingReview, "", nil
	review.PR, review.HeadSHA, review.Cycle = 345, "abc", 2
	review.Completed = t0.Add(95 * time.Minute)
	review.Posted = map[string]int64{}
	for i, p := range DefaultPhases {
		review.Posted["2/"+p.Key+"/done"] = int64(i + 1)
	}
	review.Posted["2/repost-logs/done"] = 99

	failed := running
	failed.Status, failed.Note, failed.Runner = bus.StatusFailed, "unit tests failed (3 of 41)", ""
	failed.Completed = t0.Add(40 * time.Minute)

	tests := []struct {
		name string
		view View
	}{
		{"queued", func() View {
			v := FromJob(queued, "", t0.Add(90*time.Second))
			v.QueuePosition, v.Note = 2, "waiting for a runner with 1 free GPU"
			return v
		}()},
		{"running", func() View {
			v := FromJob(&running, "canonical-ops", t0.Add(14*time.Minute+5*time.Second))
			v.BudgetLimitUSD, v.LogsURL = 25, "https://github.com/NVIDIA/TensorRT-LLM/issues/12#issuecomment-1"
			return v
		}()},
		{"waiting-review", FromJob(&review, "", t0.Add(3*time.Hour))},
		{"failed", FromJob(&failed, "", t0.Add(3*time.Hour))},
		{"awaiting-approval-unknown-size", View{
			JobKey: "o.r.3", ModelID: "deepseek-ai/DeepSeek-V3", Revision: "1d044fd8",
			SizeNote: "the Hub reports no safetensors total", GPUs: 8, GPUNote: "size unknown: assumed the largest",
			RemoteCode: true, Status: bus.StatusAwaitingApproval,
			Note:    "the model runs remote code; a maintainer must say `/onboard proceed`",
			Created: t0, Now: t0.Add(26 * time.Hour), Phases: Checklist(DefaultPhases, nil, "", false),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Render(tt.view)
			if !strings.HasPrefix(got, Prefix) {
				t.Errorf("comment does not begin with %s", Prefix)
			}
			if len(got) > 65536 {
				t.Errorf("comment is %d characters, over GitHub's limit", len(got))
			}
			golden.Check(t, tt.name+".golden.md", []byte(got))
		})
	}
}

func TestChecklist(t *testing.T) {
	defs := []PhaseDef{{"a", "A"}, {"b", "B"}, {"c", "C"}}
	tests := []struct {
		name    string
		done    []string
		current string
		failed  bool
		want    []Phase
	}{
		{"fresh", nil, "", false, []Phase{{"A", Pending}, {"B", Pending}, {"C", Pending}}},
		{"midway", []string{"a"}, "b", false, []Phase{{"A", Done}, {"B", Current}, {"C", Pending}}},
		{"extra phases appended", []string{"a", "x"}, "y", false, []Phase{{"A", Done}, {"B", Pending}, {"C", Pending}, {"x", Done}, {"y", Current}}},
		{"failed while running", []string{"a"}, "b", true, []Phase{{"A", Done}, {"B", Failed}, {"C", Pending}}},
		{"failed between phases", []string{"a"}, "", true, []Phase{{"A", Done}, {"B", Failed}, {"C", Pending}}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(Checklist(defs, tt.done, tt.current, tt.failed), tt.want); diff != "" {
			t.Errorf("%s (-got +want):\n%s", tt.name, diff)
		}
	}
}

func TestFormats(t *testing.T) {
	for n, want := range map[int64]string{751632384: "751.6M", 8190735360: "8.19B", 2_000_000_000: "2B", 671_000_000_000: "671B", 999: "999", 1_500_000_000_000: "1.5T"} {
		if got := Params(n); got != want {
			t.Errorf("Params(%d) = %q, want %q", n, got, want)
		}
	}
	for d, want := range map[time.Duration]string{45 * time.Second: "45s", 192 * time.Second: "3m 12s", 2*time.Hour + 5*time.Minute: "2h 05m", 27 * time.Hour: "1d 3h"} {
		if got := Duration(d); got != want {
			t.Errorf("Duration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestCellEscapes(t *testing.T) {
	got := Render(View{ModelID: "a/b", Status: bus.StatusFailed, Note: "x | y\nz"})
	if !strings.Contains(got, `x \| y z`) {
		t.Errorf("note not kept in its cell:\n%s", got)
	}
}

func TestSizeNotes(t *testing.T) {
	tests := []struct {
		name       string
		job        bus.Job
		size, gpus string
	}{
		{"safetensors", bus.Job{Params: 751632384, ParamsSource: "safetensors", GPUs: 1}, "Hub safetensors", ""},
		{"estimated", bus.Job{Params: 8030261248, ParamsSource: "config", GPUs: 2}, "estimated from config.json", ""},
		{"in the 15-20B gap", bus.Job{Params: 17e9, ParamsSource: "config", GPUs: 4}, "estimated from config.json",
			"17.0B falls in the 15-20B gap the workflow's rule leaves open: took 4 GPUs"},
		{"source not recorded", bus.Job{Params: 751632384, GPUs: 1}, "", ""},
		{"unknown, with the reason", bus.Job{ParamsNote: "no config.json", GPUs: 8}, "no config.json", "size unknown: assumed the largest"},
		{"unknown, no reason recorded", bus.Job{GPUs: 8}, "the Hub reports no safetensors parameter count", "size unknown: assumed the largest"},
	}
	for _, tt := range tests {
		v := FromJob(&tt.job, "", t0)
		if diff := cmp.Diff([]string{v.SizeNote, v.GPUNote}, []string{tt.size, tt.gpus}); diff != "" {
			t.Errorf("%s: size and GPU notes (-got +want):\n%s", tt.name, diff)
		}
	}
	got := Render(FromJob(&bus.Job{ModelID: "a/b", Params: 8030261248, ParamsSource: "config", GPUs: 2}, "", t0))
	if want := "| Size | 8.03B parameters (estimated from config.json) |"; !strings.Contains(got, want) {
		t.Errorf("comment lacks %q:\n%s", want, got)
	}
}

func TestCount(t *testing.T) {
	for _, tt := range []struct {
		n          int
		noun, want string
	}{
		{0, "GPU", "0 GPUs"}, {1, "GPU", "1 GPU"}, {4, "GPU", "4 GPUs"}, {1, "review remark", "1 review remark"}, {2, "cycle", "2 cycles"},
	} {
		if got := Count(tt.n, tt.noun); got != tt.want {
			t.Errorf("Count(%d, %q) = %q, want %q", tt.n, tt.noun, got, tt.want)
		}
	}
	got := Render(View{ModelID: "a/b", Params: 1, GPUs: 1, Status: bus.StatusQueued, QueuePosition: 1, Runner: "r", RunnerGPUs: []int{0, 1}})
	for _, want := range []string{"| Size | 1 parameter |", "(position 1 in the queue for 1 GPU)", "`r`, GPUs 0, 1"} {
		if !strings.Contains(got, want) {
			t.Errorf("comment lacks %q:\n%s", want, got)
		}
	}
}
