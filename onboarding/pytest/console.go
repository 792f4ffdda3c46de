package pytest

import (
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/nvidia/adbot/onboarding/internal/termlog"
)

// Console is what adbot reads from pytest's console output.
type Console struct {
	// Collected is N of "collected N items" (-1 when the line is absent),
	// with the collection errors, deselected and selected counts beside it.
	Collected        int
	CollectionErrors int
	Deselected       int
	Selected         int
	// Counts holds the final summary line's counts by word as pytest writes
	// it in the plural-free form: passed, failed, error, skipped, xfailed,
	// xpassed, warning, deselected, rerun.
	Counts map[string]int
	// NoTestsRan is true for "no tests ran".
	NoTestsRan bool
	// Seconds is the duration of the summary line.
	Seconds float64
	// SummaryLine is the final summary line as printed, without the "="
	// padding.
	SummaryLine string
	// Short holds the lines of the "short test summary info" section.
	Short []ShortLine
	// Interrupted is the reason of a "!!! Interrupted: ... !!!" line.
	Interrupted string
}

// ShortLine is one line of pytest's short test summary, e.g.
// "FAILED tests/test_x.py::test_y - AssertionError: logits differ".
type ShortLine struct {
	// Kind is FAILED, ERROR, SKIPPED, XFAIL, XPASS or PASSED.
	Kind string
	// NodeID is the test's node id (for SKIPPED, the "[n] file:line" part).
	NodeID string
	// Message is the text after " - " (may be truncated by pytest with "...").
	Message string
}

// Failed returns the FAILED and ERROR lines of the short summary.
func (c *Console) Failed() []ShortLine {
	var out []ShortLine
	for _, l := range c.Short {
		if l.Kind == "FAILED" || l.Kind == "ERROR" {
			out = append(out, l)
		}
	}
	return out
}

// OK reports whether the run passed: its summary line shows at least one
// pass and no failure or error, and it was not interrupted.
func (c *Console) OK() bool {
	return c.Counts["passed"]+c.Counts["xpassed"] > 0 && c.Counts["failed"] == 0 && c.Counts["error"] == 0 && c.Interrupted == ""
}

var (
	// summary matches the final line with or without its "=" padding (-q
	// drops it): "= 3 failed, 5 passed, 1 warning in 0.02s =",
	// "no tests ran in 0.00s", "1 passed in 125.31s (0:02:05)".
	summary    = regexp.MustCompile(`^(?:=+ )?((?:no tests ran)|(?:\d+ [a-z]+(?:, \d+ [a-z]+)*)) in ([0-9.]+)s(?: \([0-9:]+\))?(?: =+)?$`)
	countWord  = regexp.MustCompile(`(\d+) ([a-z]+)`)
	collected  = regexp.MustCompile(`collected (\d+) items?((?: / \d+ [a-z]+)*)`)
	collectTag = regexp.MustCompile(` / (\d+) ([a-z]+)`)
	section    = regexp.MustCompile(`^=+ (.+?) =+$`)
	interrupt  = regexp.MustCompile(`^!+ (?:Interrupted: )?(.+?) !+$`)
	shortKinds = []string{"FAILED", "ERROR", "SKIPPED", "XFAIL", "XPASS", "PASSED"}
)

// singular maps pytest's plural summary words to one form.
var singular = map[string]string{
	"errors": "error", "warnings": "warning", "reruns": "rerun",
}

// ParseConsole reads pytest's console output. It fails when the output has
// no final summary line (pytest was killed, or this is not pytest output),
// saying so.
func ParseConsole(r io.Reader) (*Console, error) {
	c := &Console{Collected: -1, Counts: map[string]int{}}
	inShort := false
	found := false
	lineN, err := termlog.Lines(r, "pytest log", func(_ int, line string) error {
		line = strings.TrimRight(line, "\r") // "\r" before "\r\n" too, as a terminal may write
		if m := summary.FindStringSubmatch(line); m != nil {
			c.setSummary(line, m)
			found = true
			inShort = false
			return nil
		}
		if m := section.FindStringSubmatch(line); m != nil {
			inShort = m[1] == "short test summary info"
			return nil
		}
		if m := interrupt.FindStringSubmatch(line); m != nil {
			c.Interrupted = m[1]
			return nil
		}
		if m := collected.FindStringSubmatch(line); m != nil && c.Collected < 0 {
			c.Collected, _ = strconv.Atoi(m[1])
			for _, t := range collectTag.FindAllStringSubmatch(m[2], -1) {
				n, _ := strconv.Atoi(t[1])
				switch t[2] {
				case "error", "errors":
					c.CollectionErrors = n
				case "deselected":
					c.Deselected = n
				case "selected":
					c.Selected = n
				}
			}
			return nil
		}
		if inShort {
			if s, ok := parseShort(line); ok {
				c.Short = append(c.Short, s)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("pytest log: no final summary line (\"N passed ... in Xs\" or \"no tests ran\") in %d lines", lineN)
	}
	return c, nil
}

// ParseConsoleFile is ParseConsole on a file; errors name the file.
func ParseConsoleFile(path string) (*Console, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open pytest log: %w", err)
	}
	defer f.Close()
	c, err := ParseConsole(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// setSummary records a summary line; the last one in the log wins.
func (c *Console) setSummary(line string, m []string) {
	c.Counts = map[string]int{}
	c.NoTestsRan = m[1] == "no tests ran"
	c.Seconds, _ = strconv.ParseFloat(m[2], 64)
	c.SummaryLine = strings.Trim(line, "= ")
	if c.NoTestsRan {
		return
	}
	for _, cw := range countWord.FindAllStringSubmatch(m[1], -1) {
		n, _ := strconv.Atoi(cw[1])
		w := cw[2]
		if s, ok := singular[w]; ok {
			w = s
		}
		c.Counts[w] += n
	}
}

// parseShort reads one line of the short test summary.
func parseShort(line string) (ShortLine, bool) {
	for _, k := range shortKinds {
		rest, ok := strings.CutPrefix(line, k+" ")
		if !ok {
			continue
		}
		if k == "SKIPPED" {
			// "SKIPPED [1] test_x.py:32: reason"
			if i := strings.Index(rest, ": "); i >= 0 {
				return ShortLine{Kind: k, NodeID: rest[:i], Message: rest[i+2:]}, true
			}
			return ShortLine{Kind: k, NodeID: rest}, true
		}
		id, msg := splitNodeID(rest)
		return ShortLine{Kind: k, NodeID: id, Message: msg}, true
	}
	return ShortLine{}, false
}

// splitNodeID splits "nodeid - message" where the node id's parameters
// (in brackets) may themselves hold " - ". XPASS lines put the reason after a
// plain space.
func splitNodeID(s string) (id, msg string) {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[':
			depth++
		case ']':
			depth = max(depth-1, 0)
		case ' ':
			if depth == 0 {
				return s[:i], strings.TrimPrefix(s[i+1:], "- ")
			}
		}
	}
	return s, ""
}
