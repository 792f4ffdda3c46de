package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
)

// Results is the JSON file build_and_run_ad.py writes with
// --benchmark.store-results true.
type Results struct {
	// Pairs are prompts_and_outputs, in order, indexed from 0.
	Pairs []Pair
	// Other holds the file's other top-level keys (the run's config,
	// benchmark figures) as written.
	Other map[string]json.RawMessage
}

// ParseResults decodes a results file. It fails, saying where, on JSON that
// is not well formed, on a missing prompts_and_outputs, and on an entry that
// is not a [prompt, output] pair of strings.
func ParseResults(b []byte) (*Results, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, fmt.Errorf("results JSON: %w", describeJSONError(b, err))
	}
	if top == nil {
		return nil, fmt.Errorf("results JSON: want an object, got null")
	}
	raw, ok := top["prompts_and_outputs"]
	if !ok {
		keys := make([]string, 0, len(top))
		for k := range top {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return nil, fmt.Errorf("results JSON: no \"prompts_and_outputs\" (keys: %s)", strings.Join(keys, ", "))
	}
	var entries []json.RawMessage
	if err := json.Unmarshal(raw, &entries); err != nil {
		return nil, fmt.Errorf("results JSON: prompts_and_outputs: want an array of [prompt, output]: %w", err)
	}
	res := &Results{Other: map[string]json.RawMessage{}}
	for k, v := range top {
		if k != "prompts_and_outputs" {
			res.Other[k] = v
		}
	}
	for i, e := range entries {
		var pair []*string
		if err := json.Unmarshal(e, &pair); err != nil || len(pair) != 2 || pair[0] == nil || pair[1] == nil {
			return nil, fmt.Errorf("results JSON: prompts_and_outputs[%d]: want [prompt, output] as two strings, got %s", i, abbrev(string(e), 80))
		}
		res.Pairs = append(res.Pairs, Pair{Index: i, Prompt: *pair[0], Output: *pair[1], Rank: -1})
	}
	return res, nil
}

// ParseResultsFile is ParseResults on a file; errors name the file.
func ParseResultsFile(path string) (*Results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read results JSON: %w", err)
	}
	res, err := ParseResults(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return res, nil
}

// Prompts returns the prompts of the results, for ParseLog.
func (r *Results) Prompts() []string {
	if r == nil {
		return nil
	}
	out := make([]string, len(r.Pairs))
	for i, p := range r.Pairs {
		out[i] = p.Prompt
	}
	return out
}

// describeJSONError turns a decoding error into one that says where (line
// and column) and what went wrong.
func describeJSONError(b []byte, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case len(bytes.TrimSpace(b)) == 0:
		return fmt.Errorf("empty file: %w", err)
	case errors.As(err, &syn):
		// Offset counts the bytes read, the offending one included.
		line, col := position(b, syn.Offset-1)
		return fmt.Errorf("line %d, column %d: %w", line, col, err)
	case errors.As(err, &typ):
		line, col := position(b, typ.Offset-1)
		return fmt.Errorf("line %d, column %d: %w", line, col, err)
	}
	return err
}

// position converts the byte offset of a byte to its 1-based line and column.
func position(b []byte, off int64) (line, col int) {
	off = min(max(off, 0), int64(len(b)))
	before := b[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(off) - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}

func abbrev(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// Mismatch is a disagreement between the log and the results JSON.
type Mismatch struct {
	Index int `json:"index"`
	// Field is "prompt", "output", "missing from log" or "missing from results".
	Field   string `json:"field"`
	Log     string `json:"log,omitempty"`
	Results string `json:"results,omitempty"`
}

func (m Mismatch) String() string {
	switch m.Field {
	case MissingFromLog, MissingFromResults:
		return fmt.Sprintf("prompt %d: %s", m.Index, m.Field)
	}
	return fmt.Sprintf("prompt %d: %s differs: log %q, results %q", m.Index, m.Field, abbrev(m.Log, 60), abbrev(m.Results, 60))
}

// Mismatch fields.
const (
	FieldPrompt        = "prompt"
	FieldOutput        = "output"
	MissingFromLog     = "missing from log"
	MissingFromResults = "missing from results"
)

// Reconcile checks that the log's pairs and the results JSON's agree and
// returns the pairs to report: the results' when there are any (the JSON is
// exact; the log loses trailing whitespace and can be ambiguous), else the
// log's. Prompts and outputs are compared with line endings normalised and
// surrounding whitespace ignored.
func Reconcile(log []Pair, results *Results) ([]Pair, []Mismatch) {
	if results == nil || len(results.Pairs) == 0 {
		return log, nil
	}
	byIndex := map[int]Pair{}
	for _, p := range log {
		byIndex[p.Index] = p
	}
	var mm []Mismatch
	for _, r := range results.Pairs {
		l, ok := byIndex[r.Index]
		if !ok {
			mm = append(mm, Mismatch{Index: r.Index, Field: MissingFromLog})
			continue
		}
		delete(byIndex, r.Index)
		if norm(l.Prompt) != norm(r.Prompt) {
			mm = append(mm, Mismatch{Index: r.Index, Field: FieldPrompt, Log: l.Prompt, Results: r.Prompt})
		}
		if norm(l.Output) != norm(r.Output) {
			mm = append(mm, Mismatch{Index: r.Index, Field: FieldOutput, Log: l.Output, Results: r.Output})
		}
	}
	var extra []int
	for i := range byIndex {
		extra = append(extra, i)
	}
	sort.Ints(extra)
	for _, i := range extra {
		mm = append(mm, Mismatch{Index: i, Field: MissingFromResults, Log: byIndex[i].Output})
	}
	return results.Pairs, mm
}

func norm(s string) string {
	return strings.TrimSpace(strings.ReplaceAll(s, "\r\n", "\n"))
}

// Run is what is known of one build_and_run_ad.py run.
type Run struct {
	// ExitCode is the process's exit status.
	ExitCode int
	// Log holds the pairs ParseLog read.
	Log []Pair
	// Results is the parsed results JSON, nil when the run wrote none.
	Results *Results
	// Expected is the number of prompts the run should answer (the batch
	// size); 0 means at least one.
	Expected int
}

// Verdict is the judgement of one run.
type Verdict struct {
	OK bool
	// Reason says why, in a few words fit for a status comment.
	Reason string
	// Pairs are the prompt→output pairs to report (see Reconcile).
	Pairs      []Pair
	Mismatches []Mismatch
}

// Judge decides whether a run succeeded. build_and_run_ad.py prints no
// success line: a run succeeded when it exited 0 and logged its [PROMPT i]
// lines, all of them (0..Expected-1 when Expected is set), and, with a
// results JSON, when the log and the JSON agree.
func Judge(r Run) Verdict {
	pairs, mm := Reconcile(r.Log, r.Results)
	v := Verdict{Pairs: pairs, Mismatches: mm}
	switch {
	case r.ExitCode != 0:
		v.Reason = fmt.Sprintf("exit status %d", r.ExitCode)
		if len(r.Log) > 0 {
			v.Reason += fmt.Sprintf(" after %d prompt(s) answered", len(r.Log))
		}
		return v
	case len(r.Log) == 0:
		v.Reason = "exit status 0 but no [PROMPT i] lines in the log"
		return v
	}
	if missing, n := missingIndices(r.Log, r.Expected); len(missing) > 0 {
		v.Reason = fmt.Sprintf("%d of %d prompts in the log; missing [PROMPT %s]", n-len(missing), n, joinInts(missing, 8))
		return v
	}
	if len(mm) > 0 {
		v.Reason = fmt.Sprintf("log and results JSON disagree (%d difference(s), first: %s)", len(mm), mm[0])
		return v
	}
	for _, p := range pairs {
		if why := Degenerate(p.Output); why != "" {
			v.Reason = fmt.Sprintf("degenerate output for [PROMPT %d]: %s", p.Index, why)
			return v
		}
	}
	v.OK = true
	v.Reason = fmt.Sprintf("exit status 0, %d prompts answered", len(pairs))
	return v
}

// missingIndices lists the indices absent from 0..n-1 (n = expected, or
// the highest index seen + 1, whichever is larger), and n.
func missingIndices(pairs []Pair, expected int) ([]int, int) {
	have := map[int]bool{}
	n := expected
	for _, p := range pairs {
		have[p.Index] = true
		n = max(n, p.Index+1)
	}
	n = min(n, maxIndex)
	var out []int
	for i := 0; i < n; i++ {
		if !have[i] {
			out = append(out, i)
		}
	}
	return out, n
}

// maxIndex bounds the prompt indices Judge enumerates.
const maxIndex = 1 << 16

func joinInts(xs []int, limit int) string {
	var parts []string
	for i, x := range xs {
		if i == limit {
			parts = append(parts, fmt.Sprintf("and %d more", len(xs)-limit))
			break
		}
		parts = append(parts, fmt.Sprint(x))
	}
	return strings.Join(parts, ", ")
}

// Degenerate says why an output is no real generation ("" when it is one):
// empty, or one token repeated (e.g. "the the the the").
func Degenerate(output string) string {
	fields := strings.Fields(output)
	if len(fields) == 0 {
		return "empty output"
	}
	// One character over and over ("################"): what a tokenizer
	// decodes one repeated token to when it has no spaces.
	if r := []rune(strings.Join(fields, "")); len(r) >= 8 && strings.Count(string(r), string(r[0])) == len(r) {
		return fmt.Sprintf("one character repeated (%q ×%d)", string(r[0]), len(r))
	}
	if len(fields) < 4 {
		return ""
	}
	for _, f := range fields[1:] {
		if f != fields[0] {
			return ""
		}
	}
	return fmt.Sprintf("one token repeated (%q ×%d)", clip(fields[0], 20), len(fields))
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
