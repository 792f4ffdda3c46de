package agent

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/nvidia/adbot/internal/fixtures"
)

// summary is what the tests compare of a Run.
type summary struct {
	Session string
	Model   string
	Texts   []string
	Tools   []string
	OK      bool
	Subtype string
	HasText bool
	Text    string
	Turns   int
	Cost    float64
	MS      int64
	Errors  []string
	API     int
}

func summarize(r *Run) summary {
	s := summary{Session: r.SessionID, Model: r.Model, Texts: r.Texts, OK: r.OK()}
	for _, t := range r.ToolUses {
		s.Tools = append(s.Tools, t.Name)
	}
	if res := r.Result; res != nil {
		s.Subtype, s.HasText, s.Text, s.Turns, s.Cost, s.MS, s.Errors, s.API = res.Subtype, res.HasText, res.Text, res.NumTurns, res.TotalCostUSD, res.DurationMS, res.Errors, res.APIErrorStatus
	}
	return s
}

// TestReadRealStreams reads the captured streams of ../shared/fixtures/agent.
func TestReadRealStreams(t *testing.T) {
	tests := []struct {
		file string
		want summary
	}{
		{"claude-stream-json-1.jsonl", summary{Session: "1d1e46f9-35c7-4834-b529-846d5bb82288", Model: "claude-opus-4-5-20251101", Texts: []string{"4"},
			OK: true, Subtype: "success", HasText: true, Text: "4", Turns: 1, Cost: 0.1354875, MS: 2360}},
		{"claude-stream-json-2.jsonl", summary{Session: "40e7b02d-c0f9-4876-9010-f514d4eb0603", Model: "claude-opus-4-5-20251101", Tools: []string{"Bash"},
			OK: true, Subtype: "success", HasText: true, Text: "Here are the files in the current directory.", Turns: 2, Cost: 0.24722425, MS: 8722}},
		{"claude-stream-json-3.jsonl", summary{Session: "ab4694a7-7cfd-41d4-9f9b-fac26ce2930d", Model: "claude-fable-5",
			Texts: []string{"Done — I created `hello.txt` in the working directory containing the word \"hello\"."}, Tools: []string{"Write"},
			OK: true, Subtype: "success", HasText: true, Text: "Done — I created `hello.txt` in the working directory containing the word \"hello\".", Turns: 2, Cost: 0.42642399999999997, MS: 8660}},
		{"claude-stream-json-4.jsonl", summary{Session: "b1cacbdf-32f5-479b-97ed-4a869575dda8", Tools: []string{"Bash"},
			Subtype: "error_max_turns", Turns: 2, Cost: 0.16568400000000003, MS: 10895, Errors: []string{"Reached maximum number of turns (1)"}}},
		{"claude-stream-json-5.jsonl", summary{Session: "0a4d8d99-ef93-4499-9084-39b2c92d24e0", Subtype: "success", HasText: true,
			Text: "There's an issue with the selected model (no-such-model). It may not exist or you may not have access to it. Run --model to pick a different model.", Turns: 1, MS: 667, API: 404}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			run, err := ReadFile(fixtures.Path(t, "agent", tt.file), nil)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(summarize(run), tt.want, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
			if (run.Err() == nil) != tt.want.OK {
				t.Errorf("Err() = %v with OK %v", run.Err(), tt.want.OK)
			}
		})
	}
}

func TestReadRealStreamErrors(t *testing.T) {
	run, err := ReadFile(fixtures.Path(t, "agent", "claude-stream-json-4.jsonl"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var se *SessionError
	if !errors.As(run.Err(), &se) || !se.MaxTurns() {
		t.Fatalf("Err() = %v, want a max-turns SessionError", run.Err())
	}
	want := "agent session b1cacbdf-32f5-479b-97ed-4a869575dda8 ended error_max_turns (is_error true) after 2 turns: Reached maximum number of turns (1)"
	if run.Err().Error() != want {
		t.Errorf("Err() = %q\nwant    %q", run.Err(), want)
	}
	run, err = ReadFile(fixtures.Path(t, "agent", "claude-stream-json-5.jsonl"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := run.Err().Error(); !strings.Contains(got, "ended success (is_error true)") || !strings.Contains(got, "API status 404") {
		t.Errorf("Err() = %q", got)
	}
	// Housekeeping lines only: no result.
	run, err = ReadFile(fixtures.Path(t, "agent", "claude-stream-json-6.jsonl"), nil)
	if !errors.Is(err, ErrNoResult) || run.SessionID != "23dd665a-e0c0-43e5-8099-08f8f0c0ba27" {
		t.Errorf("got %v, session %q", err, run.SessionID)
	}
}

func TestReadOnboardStream(t *testing.T) {
	var types []string
	run, err := ReadFile(filepath.Join("testdata", "onboard.jsonl"), func(m Message) { types = append(types, m.Type+"/"+m.Subtype) })
	if err != nil {
		t.Fatal(err)
	}
	if !run.OK() || run.Err() != nil {
		t.Fatalf("not OK: %v", run.Err())
	}
	if diff := cmp.Diff(run.Texts, []string{"I'll start with Phase 0.", "Done: the reviewer passed."}); diff != "" {
		t.Errorf("texts (-got +want):\n%s", diff)
	}
	wantTools := []ToolUse{
		{ID: "toolu_1", Name: "Bash", Input: json.RawMessage(`{"command":"nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits"}`), Result: "81559\n81559"},
		{ID: "toolu_2", Name: "Task", Input: json.RawMessage(`{"subagent_type":"ad-onboard-reviewer","prompt":"Review Qwen3"}`), Result: "REVIEW RESULT: PASS"},
		{ID: "toolu_3", Name: "Read", Input: json.RawMessage(`{"file_path":"modeling_qwen3.py"}`), Result: "1  import torch", Subagent: true},
	}
	if diff := cmp.Diff(run.ToolUses, wantTools); diff != "" {
		t.Errorf("tool uses (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(run.Skipped, []int{4}); diff != "" {
		t.Errorf("skipped lines (-got +want):\n%s", diff)
	}
	if run.Lines != 14 {
		t.Errorf("read %d lines, want 14 (stop at the first result)", run.Lines)
	}
	if len(types) != 12 || types[len(types)-1] != "result/success" {
		t.Errorf("handler saw %v", types)
	}
}

func TestReadErrors(t *testing.T) {
	run, err := ReadFile(filepath.Join("testdata", "killed.jsonl"), nil)
	if !errors.Is(err, ErrNoResult) || !strings.Contains(err.Error(), "killed.jsonl: read agent stream after line 2 (session 9a9a9a9a-2222-4c3b-9d7e-0a1b2c3d4e5f)") {
		t.Errorf("killed: %v", err)
	}
	if run == nil || len(run.Texts) != 1 || run.OK() {
		t.Errorf("killed run: %+v", run)
	}
	_, err = ReadFile(filepath.Join("testdata", "truncated.jsonl"), nil)
	if err == nil || !strings.Contains(err.Error(), "truncated.jsonl: agent stream line 2: unexpected end of JSON input") {
		t.Errorf("truncated: %v", err)
	}
	_, err = ReadFile(filepath.Join("testdata", "absent.jsonl"), nil)
	if err == nil || !strings.Contains(err.Error(), "absent.jsonl") {
		t.Errorf("absent: %v", err)
	}
}

func TestReadLongLineAndStringContent(t *testing.T) {
	big := strings.Repeat("x", 3<<20)
	stream := `{"type":"system","subtype":"init","session_id":"s"}` + "\n" +
		`{"type":"user","message":{"role":"user","content":"plain string prompt"}}` + "\n" +
		`{"type":"assistant","message":{"content":[{"type":"text","text":"` + big + `"}]}}` + "\n" +
		`{"type":"result","subtype":"success","is_error":false,"errors":[{"code":1}]}`
	run, err := Read(strings.NewReader(stream), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(run.Texts) != 1 || len(run.Texts[0]) != len(big) {
		t.Errorf("long text not read whole")
	}
	if diff := cmp.Diff(run.Result.Errors, []string{`{"code":1}`}); diff != "" {
		t.Errorf("errors (-got +want):\n%s", diff)
	}
	if !run.OK() || run.Result.HasText {
		t.Errorf("OK %v HasText %v", run.OK(), run.Result.HasText)
	}
}

func TestArgs(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want []string
	}{
		{"minimal", Options{Prompt: "onboard Qwen/Qwen3-0.6B"},
			[]string{"-p", "--output-format", "stream-json", "--verbose", "--", "onboard Qwen/Qwen3-0.6B"}},
		{"all", Options{Prompt: "-starts with a dash", MaxTurns: 200, MaxBudgetUSD: 25.5, Model: "sonnet", PermissionMode: "acceptEdits",
			AllowedTools: []string{"Bash(git log:*)", "Read"}, DisallowedTools: []string{"WebFetch"}, AppendSystemPrompt: "Prefix comments with [AGENT].",
			Resume: "-3f2a"},
			[]string{"-p", "--output-format", "stream-json", "--verbose", "--max-turns", "200", "--max-budget-usd", "25.5", "--model=sonnet",
				"--permission-mode", "acceptEdits", "--append-system-prompt=Prefix comments with [AGENT].", "--resume=-3f2a",
				"--allowedTools", "Bash(git log:*)", "Read", "--disallowedTools", "WebFetch", "--", "-starts with a dash"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.opts.Validate(); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(Args(tt.opts), tt.want); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		opts Options
		want string
	}{
		{Options{}, "empty prompt"},
		{Options{Prompt: "x", MaxTurns: -1}, "max turns"},
		{Options{Prompt: "x", MaxBudgetUSD: -1}, "max budget"},
		{Options{Prompt: "x", PermissionMode: "yolo"}, `permission mode "yolo"`},
		{Options{Prompt: "x", AllowedTools: []string{"--evil"}}, "tool rule"},
		{Options{Prompt: "x", Resume: "a b"}, "session id"},
	}
	for _, tt := range tests {
		if err := tt.opts.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Validate(%+v) = %v, want %q", tt.opts, err, tt.want)
		}
	}
}

func FuzzRead(f *testing.F) {
	for _, name := range []string{"onboard.jsonl", "killed.jsonl", "truncated.jsonl"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"type":"result","subtype":"success","is_error":true}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		run, err := Read(strings.NewReader(string(b)), nil)
		if err != nil {
			if !strings.Contains(err.Error(), "line") {
				t.Errorf("error without a line: %v", err)
			}
			return
		}
		if run.Result == nil {
			t.Error("no error and no result")
		}
		if run.OK() != (run.Err() == nil) {
			t.Error("OK and Err disagree")
		}
		if run.OK() && (run.Result.IsError || run.Result.Subtype != "success") {
			t.Error("OK on a failed result")
		}
	})
}
