package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func mustResults(t *testing.T, name string) *Results {
	t.Helper()
	res, err := ParseResultsFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestParseLogAgreesWithResults reads the same run logged in the three tag
// orders and checks every pair against the results JSON, byte for byte.
func TestParseLogAgreesWithResults(t *testing.T) {
	res := mustResults(t, "results.json")
	if len(res.Pairs) != 10 {
		t.Fatalf("results.json: got %d pairs, want 10", len(res.Pairs))
	}
	for _, name := range []string{"run-rank-first.log", "run-level-first.log", "run-no-rank.log"} {
		for _, withPrompts := range []bool{false, true} {
			t.Run(name, func(t *testing.T) {
				var extra []string
				if withPrompts {
					extra = res.Prompts()
				}
				pairs, err := ParseLogFile(filepath.Join("testdata", name), extra...)
				if err != nil {
					t.Fatal(err)
				}
				want := make([]Pair, len(res.Pairs))
				for i, p := range res.Pairs {
					want[i] = Pair{Index: i, Prompt: p.Prompt, Output: strings.TrimSpace(p.Output), Rank: -1}
				}
				got := make([]Pair, len(pairs))
				for i, p := range pairs {
					got[i] = Pair{Index: p.Index, Prompt: p.Prompt, Output: strings.TrimSpace(p.Output), Rank: -1}
					if strings.Contains(name, "no-rank") != (p.Rank == -1) {
						t.Errorf("pair %d: rank %d", i, p.Rank)
					}
					if p.Guessed {
						t.Errorf("pair %d: prompt guessed although it is a default prompt", i)
					}
				}
				if diff := cmp.Diff(got, want); diff != "" {
					t.Errorf("pairs (-got +want):\n%s", diff)
				}
				_, mm := Reconcile(pairs, res)
				if len(mm) != 0 {
					t.Errorf("Reconcile: %v", mm)
				}
				v := Judge(Run{ExitCode: 0, Log: pairs, Results: res, Expected: DefaultBatchSize})
				if !v.OK {
					t.Errorf("Judge: %s", v.Reason)
				}
			})
		}
	}
}

func TestParseLog(t *testing.T) {
	tests := []struct {
		name    string
		log     string
		prompts []string
		want    []Pair
	}{
		{
			name: "default prompt ending in colon",
			log:  "[11/27/2026-10:01:11] [TRT-LLM AUTO-DEPLOY] [I] [PROMPT 1] In simple words and a single sentence, explain the concept of gravity: : Mass: it attracts.\n",
			want: []Pair{{Index: 1, Prompt: DefaultPrompts[1], Output: "Mass: it attracts.", Line: 1, Rank: -1}},
		},
		{
			name: "unknown prompt with colon guessed",
			log:  "[TRT-LLM AUTO-DEPLOY] [PROMPT 0] Translate: hello: bonjour\n",
			want: []Pair{{Index: 0, Prompt: "Translate", Output: "hello: bonjour", Line: 1, Rank: -1, Guessed: true}},
		},
		{
			name:    "unknown prompt with colon, known from results",
			log:     "[TRT-LLM AUTO-DEPLOY] [PROMPT 0] Translate: hello: bonjour\n",
			prompts: []string{"Translate: hello"},
			want:    []Pair{{Index: 0, Prompt: "Translate: hello", Output: "bonjour", Line: 1, Rank: -1}},
		},
		{
			name: "old prefix, CRLF, continuation",
			log:  "[TRT-LLM] [I] [PROMPT 0] Say hi: Hi there!\r\nSecond line\r\n\r\n[TRT-LLM] [I] [PROMPT 1] Q: A\r\n",
			want: []Pair{
				{Index: 0, Prompt: "Say hi", Output: "Hi there!\nSecond line", Line: 1, Rank: -1},
				{Index: 1, Prompt: "Q", Output: "A", Line: 4, Rank: -1},
			},
		},
		{
			name: "other records end an output",
			log: "x\n[01/02/2026-03:04:05] [TRT-LLM AUTO-DEPLOY] [RANK 3] [I] [PROMPT 0] p: line one\nline two\n" +
				"[01/02/2026-03:04:06] [TRT-LLM] [W] warning\nnot part of the output\n" +
				"[01/02/2026-03:04:07] [TRT-LLM AUTO-DEPLOY] [RANK 3] [I] [PROMPT 1] q: end\n[TensorRT-LLM][INFO] bye\n",
			want: []Pair{
				{Index: 0, Prompt: "p", Output: "line one\nline two", Line: 2, Rank: 3},
				{Index: 1, Prompt: "q", Output: "end", Line: 6, Rank: 3},
			},
		},
		{
			name: "ranks repeat an index: first kept, sorted",
			log: "[TRT-LLM AUTO-DEPLOY] [RANK 0] [I] [PROMPT 1] b: from rank 0\n" +
				"[TRT-LLM AUTO-DEPLOY] [RANK 1] [I] [PROMPT 1] b: from rank 1\n" +
				"[TRT-LLM AUTO-DEPLOY] [RANK 0] [I] [PROMPT 0] a: zero\n",
			want: []Pair{
				{Index: 0, Prompt: "a", Output: "zero", Line: 3, Rank: 0},
				{Index: 1, Prompt: "b", Output: "from rank 0", Line: 1, Rank: 0},
			},
		},
		{
			name: "empty output",
			log:  "[TRT-LLM AUTO-DEPLOY] [I] [PROMPT 0] How big is the universe? :\n",
			want: []Pair{{Index: 0, Prompt: DefaultPrompts[0], Output: "", Line: 1, Rank: -1}},
		},
		{
			name: "output on the next lines",
			log:  "[TRT-LLM AUTO-DEPLOY] [I] [PROMPT 0] Write code:\nprint(1)\n",
			want: []Pair{{Index: 0, Prompt: "Write code", Output: "print(1)", Line: 1, Rank: -1}},
		},
		{
			name:    "prompt of two lines known from results",
			log:     "[TRT-LLM AUTO-DEPLOY] [I] [PROMPT 0] Line one: x\nline two: answer\n",
			prompts: []string{"Line one: x\nline two"},
			want:    []Pair{{Index: 0, Prompt: "Line one: x\nline two", Output: "answer", Line: 1, Rank: -1}},
		},
		{
			name: "traceback ends the last output",
			log:  "[TRT-LLM AUTO-DEPLOY] [I] [PROMPT 0] p: out\nTraceback (most recent call last):\n  File x\n",
			want: []Pair{{Index: 0, Prompt: "p", Output: "out", Line: 1, Rank: -1}},
		},
		{
			name: "no prompts",
			log:  "[TRT-LLM AUTO-DEPLOY] [I] compiled\n",
			want: nil,
		},
		{
			name: "colour codes",
			log:  "\x1b[32m[11/27/2026-10:01:10] [TRT-LLM AUTO-DEPLOY] [I]\x1b[0m [PROMPT 0] p: out\n",
			want: []Pair{{Index: 0, Prompt: "p", Output: "out", Line: 1, Rank: -1}},
		},
		{
			name: "no final newline",
			log:  "[TRT-LLM AUTO-DEPLOY] [I] [PROMPT 0] p: out",
			want: []Pair{{Index: 0, Prompt: "p", Output: "out", Line: 1, Rank: -1}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseLog(strings.NewReader(tt.log), tt.prompts...)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tt.want, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("ParseLog (-got +want):\n%s", diff)
			}
		})
	}
}

func TestParseLogErrors(t *testing.T) {
	_, err := ParseLog(strings.NewReader("ok\n[TRT-LLM AUTO-DEPLOY] [I] [PROMPT 4] no separator here\n"))
	if err == nil || !strings.Contains(err.Error(), "log line 2: [PROMPT 4] has no \": \"") {
		t.Fatalf("got %v", err)
	}
	_, err = ParseLogFile(filepath.Join("testdata", "absent.log"))
	if err == nil || !strings.Contains(err.Error(), "absent.log") {
		t.Fatalf("got %v", err)
	}
}

func TestParseResultsErrors(t *testing.T) {
	tests := []struct {
		file string
		want string
	}{
		{"truncated.json", "truncated.json: results JSON: line 1, column 105: unexpected end of JSON input"},
		{"syntax.json", "syntax.json: results JSON: line 4, column 10: invalid character '\"' after array element"},
		{"bad-pair.json", "bad-pair.json: results JSON: prompts_and_outputs[1]: want [prompt, output] as two strings, got [\"only one\"]"},
		{"no-pairs.json", "no-pairs.json: results JSON: no \"prompts_and_outputs\" (keys: benchmark_results, config)"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, err := ParseResultsFile(filepath.Join("testdata", tt.file))
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.HasSuffix(err.Error(), tt.want) {
				t.Errorf("got  %q\nwant suffix %q", err, tt.want)
			}
		})
	}
	if _, err := ParseResults([]byte("")); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty input: %v", err)
	}
	if _, err := ParseResults([]byte("null")); err == nil {
		t.Errorf("null: no error")
	}
}

func TestParseResultsKeepsOtherKeys(t *testing.T) {
	res := mustResults(t, "results.json")
	if _, ok := res.Other["config"]; !ok {
		t.Errorf("config not kept: %v", res.Other)
	}
	if got := res.Pairs[6].Output; !strings.HasPrefix(got, "\n\n```python\n") {
		t.Errorf("output 6 not verbatim: %q", got)
	}
}

func TestReconcile(t *testing.T) {
	res := &Results{Pairs: []Pair{
		{Index: 0, Prompt: "a", Output: "one\n", Rank: -1},
		{Index: 1, Prompt: "b", Output: "two", Rank: -1},
		{Index: 2, Prompt: "c", Output: "three", Rank: -1},
	}}
	log := []Pair{
		{Index: 0, Prompt: "a", Output: "one"},
		{Index: 1, Prompt: "b", Output: "TWO"},
		{Index: 3, Prompt: "d", Output: "four"},
	}
	pairs, mm := Reconcile(log, res)
	if diff := cmp.Diff(pairs, res.Pairs); diff != "" {
		t.Errorf("pairs should be the results' (-got +want):\n%s", diff)
	}
	want := []Mismatch{
		{Index: 1, Field: FieldOutput, Log: "TWO", Results: "two"},
		{Index: 2, Field: MissingFromLog},
		{Index: 3, Field: MissingFromResults, Log: "four"},
	}
	if diff := cmp.Diff(mm, want); diff != "" {
		t.Errorf("mismatches (-got +want):\n%s", diff)
	}
	pairs, mm = Reconcile(log, nil)
	if len(mm) != 0 || len(pairs) != 3 || pairs[2].Index != 3 {
		t.Errorf("without results: %v %v", pairs, mm)
	}
}

func TestJudge(t *testing.T) {
	read := func(name string) []Pair {
		p, err := ParseLogFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name   string
		run    Run
		ok     bool
		reason string
	}{
		{"success", Run{Log: read("run-rank-first.log"), Expected: 10}, true, "exit status 0, 10 prompts answered"},
		{"crash after two", Run{ExitCode: 1, Log: read("crash.log"), Expected: 10}, false, "exit status 1 after 2 prompt(s) answered"},
		{"compile error", Run{ExitCode: 1, Log: read("compile-error.log")}, false, "exit status 1"},
		{"exit 0 no prompts", Run{Log: read("compile-error.log")}, false, "exit status 0 but no [PROMPT i] lines in the log"},
		{"missing prompts", Run{Log: read("crash.log"), Expected: 10}, false, "2 of 10 prompts in the log; missing [PROMPT 2, 3, 4, 5, 6, 7, 8, 9]"},
		{"gap", Run{Log: []Pair{{Index: 0}, {Index: 2}}}, false, "2 of 3 prompts in the log; missing [PROMPT 1]"},
		{"disagree", Run{Log: []Pair{{Index: 0, Prompt: "a", Output: "x"}}, Results: &Results{Pairs: []Pair{{Index: 0, Prompt: "a", Output: "y"}}}}, false,
			`log and results JSON disagree (1 difference(s), first: prompt 0: output differs: log "x", results "y")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Judge(tt.run)
			if v.OK != tt.ok || v.Reason != tt.reason {
				t.Errorf("Judge = %v %q, want %v %q", v.OK, v.Reason, tt.ok, tt.reason)
			}
		})
	}
}

func FuzzParseLog(f *testing.F) {
	for _, name := range []string{"run-rank-first.log", "crash.log", "old-crlf.log"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add("[TRT-LLM] [PROMPT 0] a: : b\n")
	f.Add("[TRT-LLM AUTO-DEPLOY] [PROMPT 99999999999999999999] a: b")
	f.Fuzz(func(t *testing.T, log string) {
		pairs, err := ParseLog(strings.NewReader(log))
		if err != nil {
			if !strings.Contains(err.Error(), "line") {
				t.Errorf("error does not say where: %v", err)
			}
			return
		}
		for i := 1; i < len(pairs); i++ {
			if pairs[i-1].Index >= pairs[i].Index {
				t.Errorf("pairs not in strictly increasing index order: %d then %d", pairs[i-1].Index, pairs[i].Index)
			}
		}
	})
}

func FuzzParseResults(f *testing.F) {
	for _, name := range []string{"results.json", "truncated.json", "bad-pair.json", "syntax.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		res, err := ParseResults(b)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "results JSON: ") {
				t.Errorf("error does not name the file kind: %v", err)
			}
			return
		}
		for i, p := range res.Pairs {
			if p.Index != i {
				t.Errorf("pair %d has index %d", i, p.Index)
			}
		}
	})
}
