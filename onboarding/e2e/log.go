// Package e2e reads what TensorRT-LLM's examples/auto_deploy/build_and_run_ad.py
// leaves behind: the "[PROMPT i] prompt: output" lines of its log and the
// results JSON written with --benchmark.store-results, reconciles the two and
// decides whether the run succeeded.
package e2e

import (
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/nvidia/adbot/onboarding/internal/termlog"
)

// DefaultPrompts are the prompts build_and_run_ad.py uses when none are
// given, repeated to the batch size (10 by default). Several end with ": ",
// which makes the log line "prompt: : output".
var DefaultPrompts = []string{
	"How big is the universe? ",
	"In simple words and a single sentence, explain the concept of gravity: ",
	"How to fix slicing in golf? ",
	"Where is the capital of Iceland? ",
	"What are the three laws of thermodynamics? ",
	"Summarize the plot of Romeo and Juliet in two sentences: ",
	"Write a Python function that checks if a number is prime.",
	"Explain the difference between a compiler and an interpreter: ",
	"What causes the northern lights? ",
	"What are the health benefits of drinking green tea?",
}

// DefaultBatchSize is build_and_run_ad.py's --prompt.batch-size default: the
// number of prompts a run answers unless told otherwise.
const DefaultBatchSize = 10

// Pair is one prompt and the text the model generated for it.
type Pair struct {
	// Index is i of "[PROMPT i]" (the position in prompts_and_outputs for
	// pairs read from the results JSON).
	Index  int    `json:"index"`
	Prompt string `json:"prompt"`
	Output string `json:"output"`
	// Line is the 1-based log line of "[PROMPT i]"; 0 for the results JSON.
	Line int `json:"line,omitempty"`
	// Rank is n of "[RANK n]" on that line, -1 when absent.
	Rank int `json:"rank"`
	// Guessed is true when the prompt could be split from the output in more
	// than one way and no known prompt decided it (the log writes
	// "{prompt}: {output}" and both may hold ": ").
	Guessed bool `json:"guessed,omitempty"`
}

var (
	// stamp is the logger's timestamp, "[12/20/2025-03:35:50] ".
	stamp = `\[\d{2}/\d{2}/\d{4}-\d{2}:\d{2}:\d{2}\]`
	// promptLine matches a [PROMPT i] record: an optional timestamp, the
	// TRT-LLM or AutoDeploy logger tag, then [I] and [RANK n] in either order
	// or absent.
	promptLine = regexp.MustCompile(`^(?:` + stamp + `\s*)?\[TRT-LLM(?: AUTO-DEPLOY)?\]((?:\s*\[(?:[IWEDV]|RANK \d+)\])*)\s*\[PROMPT (\d+)\] ?(.*)$`)
	rankTag    = regexp.MustCompile(`\[RANK (\d+)\]`)
	// recordStart matches the first line of any other log record; a
	// multi-line output ends before it.
	recordStart = regexp.MustCompile(`^(?:` + stamp + `|\[TRT-LLM[\] ]|\[TensorRT-LLM\]|Traceback \(most recent call last\):)`)
)

// ParseLog reads build_and_run_ad.py's output (stdout and stderr together,
// in any order with the other log lines) and returns its [PROMPT i] pairs in
// index order. An output runs over the lines after its [PROMPT i] line up to
// the next line that starts a log record (a timestamp, a TRT-LLM logger tag)
// or a Python traceback; its trailing blank lines are dropped. Known prompts
// (DefaultPrompts and any given, e.g. from the results JSON) decide where a
// prompt that holds ": " ends. When a prompt index appears more than once
// (several ranks), the first is kept.
func ParseLog(r io.Reader, prompts ...string) ([]Pair, error) {
	known := knownPrompts(prompts)
	var (
		pairs []Pair
		cur   *Pair
		first string
		cont  []string
		seen  = map[int]bool{}
	)
	flush := func() error {
		if cur == nil {
			return nil
		}
		for len(cont) > 0 && strings.TrimSpace(cont[len(cont)-1]) == "" {
			cont = cont[:len(cont)-1]
		}
		text := strings.Join(append([]string{first}, cont...), "\n")
		var ok bool
		cur.Prompt, cur.Output, cur.Guessed, ok = splitPrompt(text, known)
		if !ok {
			return fmt.Errorf("log line %d: [PROMPT %d] has no \": \" between the prompt and the output", cur.Line, cur.Index)
		}
		if !seen[cur.Index] {
			seen[cur.Index] = true
			pairs = append(pairs, *cur)
		}
		cur, cont = nil, nil
		return nil
	}
	_, err := termlog.Lines(r, "log", func(lineN int, line string) error {
		if m := promptLine.FindStringSubmatch(line); m != nil {
			if err := flush(); err != nil {
				return err
			}
			idx, err := strconv.Atoi(m[2])
			if err != nil {
				return fmt.Errorf("log line %d: prompt index %q: %w", lineN, m[2], err)
			}
			p := Pair{Index: idx, Line: lineN, Rank: -1}
			if rm := rankTag.FindStringSubmatch(m[1]); rm != nil {
				p.Rank, _ = strconv.Atoi(rm[1])
			}
			cur, first = &p, m[3]
			return nil
		}
		if cur != nil {
			if recordStart.MatchString(line) {
				return flush()
			}
			cont = append(cont, line)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := flush(); err != nil {
		return nil, err
	}
	sort.SliceStable(pairs, func(i, j int) bool { return pairs[i].Index < pairs[j].Index })
	return pairs, nil
}

// ParseLogFile is ParseLog on a file; errors name the file.
func ParseLogFile(path string, prompts ...string) ([]Pair, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open e2e log: %w", err)
	}
	defer f.Close()
	pairs, err := ParseLog(f, prompts...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return pairs, nil
}

// knownPrompts returns the prompts that may be recognised, longest first so
// that a prompt that extends another wins.
func knownPrompts(extra []string) []string {
	all := append(append([]string{}, extra...), DefaultPrompts...)
	sort.SliceStable(all, func(i, j int) bool { return len(all[i]) > len(all[j]) })
	return all
}

// splitPrompt splits "{prompt}: {output}". It reports guessed when more than
// one split was possible and no known prompt decided it, and !ok when there
// is no separator at all.
func splitPrompt(s string, known []string) (prompt, output string, guessed, ok bool) {
	for _, k := range known {
		if k == "" {
			continue
		}
		if rest, found := strings.CutPrefix(s, k+": "); found {
			return k, rest, false, true
		}
		if s == k+":" || s == k+": " {
			return k, "", false, true
		}
	}
	// Guess on the first line: a prompt that ends with ": " shows as
	// "prompt: : output"; otherwise take the first ": ".
	head := s
	if nl := strings.IndexByte(s, '\n'); nl >= 0 {
		head = s[:nl]
	}
	many := strings.Count(head, ": ") > 1
	if i := strings.Index(head, ": : "); i >= 0 {
		return s[:i+2], s[i+4:], strings.Count(head, ": ") > 2, true
	}
	if i := strings.Index(head, ": "); i >= 0 {
		return s[:i], s[i+2:], many, true
	}
	if strings.HasSuffix(head, ":") && len(head) < len(s) {
		return head[:len(head)-1], s[len(head)+1:], false, true
	}
	if strings.HasSuffix(s, ":") {
		return s[:len(s)-1], "", false, true
	}
	// A prompt of several lines.
	if i := strings.Index(s, ": "); i >= 0 {
		return s[:i], s[i+2:], true, true
	}
	return "", "", false, false
}
