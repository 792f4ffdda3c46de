package jobpage

import (
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nvidia/adbot/internal/fixtures"
	"github.com/nvidia/adbot/runners"
)

func TestPaneOf(t *testing.T) {
	for _, tc := range []struct {
		step string
		want Pane
	}{
		{"agent-model-1", PaneAgent},
		{"agent-review-2", PaneAgent},
		{"pytest-1", PanePytest},
		{"e2e-reduced-1", PaneE2E},
		{"git-push", PaneOther},
		{"", PaneOther},
	} {
		t.Run(tc.step, func(t *testing.T) {
			if diff := cmp.Diff(PaneOf(tc.step), tc.want); diff != "" {
				t.Errorf("PaneOf(%q) (-got +want):\n%s", tc.step, diff)
			}
		})
	}
}

func TestTurns(t *testing.T) {
	for _, tc := range []struct {
		name, line string
		want       []Turn
	}{
		{"blank", "  ", nil},
		{"not json", "Traceback (most recent call last):", []Turn{{KindOut, "Traceback (most recent call last):\n"}}},
		{"init", `{"type":"system","subtype":"init","session_id":"s1","model":"claude-x"}`, []Turn{{KindSystem, "session s1 started, model claude-x"}}},
		{"other system line", `{"type":"system","subtype":"hook"}`, nil},
		{"assistant text and tool", `{"type":"assistant","message":{"content":[{"type":"text","text":"Reading <config>."},{"type":"tool_use","name":"Read","input":{"file_path": "/a/b.py"}}]}}`,
			[]Turn{{KindAssistant, "Reading <config>."}, {KindTool, `Read {"file_path":"/a/b.py"}`}}},
		{"tool result string", `{"type":"user","message":{"content":[{"type":"tool_result","content":"ok"}]}}`, []Turn{{KindToolResult, "ok"}}},
		{"tool result blocks, error", `{"type":"user","message":{"content":[{"type":"tool_result","is_error":true,"content":[{"type":"text","text":"no such file"},{"type":"image"}]}]}}`,
			[]Turn{{KindToolResult, "error: no such file\n(image)"}}},
		{"user text is not the agent's", `{"type":"user","message":{"content":"do it"}}`, nil},
		{"result", `{"type":"result","subtype":"success","num_turns":12,"total_cost_usd":1.234}`, []Turn{{KindResult, "session ended: success, 12 turns, $1.23"}}},
		{"broken json", `{"type":`, []Turn{{KindNote, "(a stream line that does not decode: unexpected end of JSON input)"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(Turns(tc.line), tc.want); diff != "" {
				t.Errorf("Turns (-got +want):\n%s", diff)
			}
		})
	}
}

func TestClip(t *testing.T) {
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"abcdef", 3, "abc… (3 more bytes)"},
		{"ééé", 3, "é… (4 more bytes)"}, // never cut inside a rune
	} {
		t.Run(tc.s, func(t *testing.T) {
			if diff := cmp.Diff(clip(tc.s, tc.n), tc.want); diff != "" {
				t.Errorf("clip (-got +want):\n%s", diff)
			}
		})
	}
}

// kinds lists items as "kind:text" for comparison.
func kinds(items []Item) []string {
	var out []string
	for _, it := range items {
		out = append(out, string(it.Pane)+"/"+it.Kind+":"+it.Text)
	}
	return out
}

func TestTailJoinsAgentLinesAcrossChunks(t *testing.T) {
	tl := newTail("g", 1)
	line := `{"type":"assistant","message":{"content":[{"type":"text","text":"hello"}]}}`
	var got []Item
	got = append(got, tl.add(runners.LogChunk{Cycle: 1, Step: "agent-model-1", Seq: 0, Stream: "stdout", Data: line[:20]})...)
	got = append(got, tl.add(runners.LogChunk{Cycle: 1, Step: "agent-model-1", Seq: 1, Stream: "stdout", Data: line[20:] + "\nplain"})...)
	got = append(got, tl.add(runners.LogChunk{Cycle: 1, Step: "agent-model-1", Seq: 2, Stream: "stdout", Data: " text\n"})...)
	got = append(got, tl.add(runners.LogChunk{Cycle: 1, Step: "pytest-1", Seq: 0, Stream: "stdout", Data: "test_a PASSED\n"})...)
	got = append(got, tl.add(runners.LogChunk{Cycle: 1, Step: "pytest-1", Seq: 1, Stream: "stderr", Data: "warning\n"})...)
	want := []string{
		"agent/step:agent-model-1",
		"agent/assistant:hello",
		"agent/out:plain text\n",
		"pytest/step:pytest-1",
		"pytest/out:test_a PASSED\n",
		"pytest/err:warning\n",
	}
	if diff := cmp.Diff(kinds(got), want); diff != "" {
		t.Errorf("items (-got +want):\n%s", diff)
	}
	for i, it := range got {
		if it.N != uint64(i+1) {
			t.Errorf("item %d numbered %d, want %d", i, it.N, i+1)
		}
	}
	if diff := cmp.Diff(kinds(tl.since(4)), want[4:]); diff != "" {
		t.Errorf("since(4) (-got +want):\n%s", diff)
	}
}

func TestTailGivesUpOverlongLine(t *testing.T) {
	tl := newTail("g", 1)
	tl.maxLine = 10
	var got []Item
	for _, d := range []string{"{0123456", "789abcdef", "more", "\n", `{"type":"result","subtype":"success"}` + "\n"} {
		got = append(got, tl.add(runners.LogChunk{Cycle: 1, Step: "agent-x", Stream: "stdout", Data: d})...)
	}
	note := "agent/note:(a stream line longer than 10 bytes is left out here; the cycle's full log has it)"
	// The result line is longer than 10 bytes too: each long line says so once.
	want := []string{"agent/step:agent-x", note, note}
	if diff := cmp.Diff(kinds(got), want); diff != "" {
		t.Errorf("items (-got +want):\n%s", diff)
	}
	if len(tl.partial) != 0 || len(tl.over) != 0 {
		t.Errorf("state left after whole lines: partial %v, over %v", tl.partial, tl.over)
	}
}

func TestTailBounds(t *testing.T) {
	for _, tc := range []struct {
		name               string
		maxItems, maxBytes int
		wantItems          int
	}{
		{"by items", 5, 1 << 20, 5},
		{"by bytes", 1000, 35, 3}, // a heading (6 bytes) and 10-byte chunks
	} {
		t.Run(tc.name, func(t *testing.T) {
			tl := newTail("g", 1)
			tl.maxItems, tl.maxBytes = tc.maxItems, tc.maxBytes
			for i := range 20 {
				tl.add(runners.LogChunk{Cycle: 1, Step: "other", Seq: i, Stream: "stdout", Data: "123456789\n"})
			}
			if len(tl.items) != tc.wantItems {
				t.Errorf("kept %d items, want %d", len(tl.items), tc.wantItems)
			}
			size := 0
			for _, it := range tl.items {
				size += len(it.Text)
			}
			if size != tl.bytes || size > tc.maxBytes {
				t.Errorf("kept %d bytes (counted %d), bound %d", size, tl.bytes, tc.maxBytes)
			}
			if last := tl.items[len(tl.items)-1].N; last != 21 {
				t.Errorf("last item is %d, want 21 (the newest kept)", last)
			}
		})
	}
}

// TestTailReadsRealAgentStreams feeds recorded Claude Code streams through a
// tail in odd-sized chunks: every line reads as the turns it holds, none as a note.
func TestTailReadsRealAgentStreams(t *testing.T) {
	for _, tc := range []struct {
		file string
		want map[string]int
	}{
		{"claude-stream-json-1.jsonl", map[string]int{KindStep: 1, KindSystem: 1, KindAssistant: 1, KindResult: 1}},
		{"claude-stream-json-2.jsonl", map[string]int{KindStep: 1, KindSystem: 1, KindTool: 1, KindToolResult: 1, KindResult: 1}},
		{"claude-stream-json-3.jsonl", map[string]int{KindStep: 1, KindSystem: 1, KindTool: 1, KindToolResult: 1, KindAssistant: 1, KindResult: 1}},
		{"claude-stream-json-4.jsonl", map[string]int{KindStep: 1, KindTool: 1, KindResult: 1}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile(fixtures.Path(t, "agent", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			tl := newTail("g", 1)
			s := string(b)
			count := map[string]int{}
			for i := 0; len(s) > 0; i++ {
				n := min(len(s), 97)
				for _, it := range tl.add(runners.LogChunk{Cycle: 1, Step: "agent-model-1", Seq: i, Stream: "stdout", Data: s[:n]}) {
					count[it.Kind]++
				}
				s = s[n:]
			}
			if diff := cmp.Diff(count, tc.want); diff != "" {
				t.Errorf("turns by kind (-got +want):\n%s", diff)
			}
		})
	}
}

func FuzzTurns(f *testing.F) {
	f.Add(`{"type":"assistant","message":{"content":[{"type":"tool_use","name":"Bash","input":{"command":"ls"}}]}}`)
	f.Add(`{"type":"user","message":{"content":[{"type":"tool_result","content":[{"type":"text","text":"x"}]}]}}`)
	f.Add(`{"type":"result","subtype":"error_max_turns"}`)
	f.Add("plain\n")
	f.Fuzz(func(t *testing.T, line string) {
		for _, turn := range Turns(line) {
			if turn.Kind == "" {
				t.Errorf("turn without a kind from %q", line)
			}
		}
	})
}

// FuzzTailAdd splits data into chunks at fuzzed places: the bounds hold and
// the numbering only grows.
func FuzzTailAdd(f *testing.F) {
	f.Add("{\"type\":\"result\"}\nabc\n", uint8(3), "agent-1")
	f.Add("a\nb\nc", uint8(1), "pytest-1")
	f.Fuzz(func(t *testing.T, data string, cut uint8, step string) {
		tl := newTail("g", 1)
		tl.maxItems, tl.maxBytes, tl.maxLine = 8, 64, 16
		n := int(cut%16) + 1
		var last uint64
		for i := 0; len(data) > 0; i++ {
			k := min(n, len(data))
			for _, it := range tl.add(runners.LogChunk{Cycle: 1, Step: step, Seq: i, Stream: "stdout", Data: data[:k]}) {
				if it.N <= last {
					t.Fatalf("item %d after %d", it.N, last)
				}
				last = it.N
			}
			data = data[k:]
			if len(tl.items) > tl.maxItems || tl.bytes > tl.maxBytes {
				t.Fatalf("tail holds %d items, %d bytes; bounds %d, %d", len(tl.items), tl.bytes, tl.maxItems, tl.maxBytes)
			}
			for _, p := range tl.partial {
				if len(p) > tl.maxLine {
					t.Fatalf("partial line of %d bytes kept; bound %d", len(p), tl.maxLine)
				}
			}
		}
	})
}
