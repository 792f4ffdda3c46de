// Package review reads the verdict of the ad-onboard-reviewer agent
// (.claude/agents/ad-onboard-reviewer.md in TensorRT-LLM): a first line
// "REVIEW RESULT: PASS" or "REVIEW RESULT: FAIL", sections "=== X. Name ===",
// item lines "ID  PASS|FAIL|N/A  file:line — evidence", then "PASSED: n/m",
// "FAILED: n/m" and "Failed items requiring fixes:". An LLM writes it, so the
// parser is tolerant: Markdown emphasis and headings, bullets, tables, extra
// spaces, "-" or "–" for "—", prose before the verdict, missing counts. One
// FAIL item fails the review whatever the header says.
package review

import (
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// Status of one checklist item.
type Status string

// Statuses.
const (
	Pass Status = "PASS"
	Fail Status = "FAIL"
	NA   Status = "N/A"
)

// Item is one checklist line.
type Item struct {
	// ID is the checklist id, e.g. "B2" or "BA1".
	ID      string
	Status  Status
	Section string
	// Location is the "file:line" cited, when the line starts with one.
	Location string
	Evidence string
	// Line is the 1-based line of the verdict text.
	Line int
}

// Review is a parsed verdict.
type Review struct {
	// Header is the status the REVIEW RESULT line states.
	Header Status
	Items  []Item
	// Passed, Failed and Total are the summary's counts, -1 when absent.
	Passed, Failed, Total int
	// Fixes are the entries of "Failed items requiring fixes:".
	Fixes []string
	// Problems lists inconsistencies: a PASS header with FAIL items, counts
	// that disagree with the items, and the like.
	Problems []string
}

// OK reports whether the review passed: the header says PASS, no item
// fails, and there are items (a bare "PASS" proves nothing).
func (r *Review) OK() bool {
	return r.Header == Pass && len(r.Items) > 0 && len(r.FailedItems()) == 0
}

// FailedItems returns the items whose status is FAIL.
func (r *Review) FailedItems() []Item {
	var out []Item
	for _, it := range r.Items {
		if it.Status == Fail {
			out = append(out, it)
		}
	}
	return out
}

// Sections returns the section names in order of appearance.
func (r *Review) Sections() []string {
	var out []string
	for _, it := range r.Items {
		if len(out) == 0 || out[len(out)-1] != it.Section {
			out = append(out, it.Section)
		}
	}
	return out
}

var (
	header = regexp.MustCompile(`(?i)REVIEW\s+RESULT\s*[:\-–—]?\s*(PASS|FAIL)\b`)
	// sectionLine: "=== A. Structure ===", "## B. Self-Containment", "**C. Ops**".
	sectionEq = regexp.MustCompile(`^=+\s*(.*?)\s*=*$`)
	sectionMd = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*$`)
	// item: an id (letters then digits), a status, the rest.
	// Between the id and the status: spaces, or punctuation ("A1: PASS",
	// "A1 — PASS"), and perhaps a mark such as ✅ or ❌.
	item = regexp.MustCompile(`(?i)^([A-Z]{1,3}\d{1,3}[a-z]?)(?:\s*[.:)|\-–—]\s*|\s+)(?:[^\w\s]+\s*)?(PASS(?:ED)?|FAIL(?:ED)?|N/?A)\b[\s:.\-–—]*(.*)$`)
	// location at the start of the rest: "modeling_foo.py:45", "a/b.py:10-20".
	location = regexp.MustCompile("^`?([\\w./\\-]+\\.\\w+:\\d+(?:[-–]\\d+)?)\\b`?")
	count    = regexp.MustCompile(`(?i)^(PASSED|FAILED)\s*:?\s*(\d+)\s*(?:/|of)\s*(\d+)`)
	fixesHdr = regexp.MustCompile(`(?i)^failed items requiring fixes\s*:?`)
	listMark = regexp.MustCompile(`^(?:[-*+]|\d+[.)])\s+`)
	// bothVerdicts follows "REVIEW RESULT: PASS" when the template's
	// "PASS | FAIL" was copied.
	bothVerdicts = regexp.MustCompile(`^\s*[|/]\s*(?i:PASS|FAIL)`)
)

// Parse reads a verdict. It fails only when the text holds no REVIEW RESULT
// line; everything else that is odd is listed in Problems.
func Parse(text string) (*Review, error) {
	r := &Review{Passed: -1, Failed: -1, Total: -1}
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	section := ""
	inFixes := false
	seen := map[string]int{}
	for i, raw := range lines {
		line := clean(raw)
		if line == "" {
			continue
		}
		if r.Header == "" {
			m := header.FindStringSubmatch(line)
			if m == nil {
				continue // prose before the verdict
			}
			r.Header = Status(strings.ToUpper(m[1]))
			// "REVIEW RESULT: PASS | FAIL" copied from the template states nothing.
			if rest := line[strings.Index(line, m[0])+len(m[0]):]; bothVerdicts.MatchString(rest) {
				r.Header = ""
				r.Problems = append(r.Problems, fmt.Sprintf("line %d: the REVIEW RESULT line names no single verdict: %q", i+1, line))
				return r, fmt.Errorf("reviewer verdict line %d: REVIEW RESULT is neither PASS nor FAIL: %q", i+1, line)
			}
			continue
		}
		if fixesHdr.MatchString(line) {
			inFixes = true
			continue
		}
		if m := count.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[2])
			total, _ := strconv.Atoi(m[3])
			if strings.EqualFold(m[1], "PASSED") {
				r.Passed = n
			} else {
				r.Failed = n
			}
			if r.Total >= 0 && r.Total != total {
				r.Problems = append(r.Problems, fmt.Sprintf("line %d: total %d differs from the earlier %d", i+1, total, r.Total))
			}
			r.Total = total
			continue
		}
		if inFixes {
			if listMark.MatchString(line) {
				r.Fixes = append(r.Fixes, listMark.ReplaceAllString(line, ""))
				continue
			}
			if !isSection(line) {
				continue
			}
		}
		if name, ok := sectionName(line); ok {
			section = name
			inFixes = false
			continue
		}
		if it, ok := parseItem(line); ok {
			it.Section, it.Line = section, i+1
			if prev, dup := seen[it.ID]; dup {
				r.Problems = append(r.Problems, fmt.Sprintf("line %d: item %s already given on line %d", i+1, it.ID, prev))
			}
			seen[it.ID] = i + 1
			r.Items = append(r.Items, it)
		}
	}
	if r.Header == "" {
		return nil, fmt.Errorf("reviewer verdict: no \"REVIEW RESULT: PASS|FAIL\" line in %d lines", len(lines))
	}
	r.check()
	return r, nil
}

// ParseFile is Parse on a file; errors name the file.
func ParseFile(path string) (*Review, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read reviewer verdict: %w", err)
	}
	r, err := Parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// ParseReader is Parse on a reader.
func ParseReader(rd io.Reader) (*Review, error) {
	b, err := io.ReadAll(rd)
	if err != nil {
		return nil, fmt.Errorf("read reviewer verdict: %w", err)
	}
	return Parse(string(b))
}

// check lists the inconsistencies between the header, the items and the counts.
func (r *Review) check() {
	failed := r.FailedItems()
	if r.Header == Pass && len(failed) > 0 {
		ids := make([]string, len(failed))
		for i, it := range failed {
			ids[i] = it.ID
		}
		r.Problems = append(r.Problems, fmt.Sprintf("header says PASS but %d item(s) FAIL: %s", len(failed), strings.Join(ids, ", ")))
	}
	if r.Header == Fail && len(failed) == 0 && len(r.Items) > 0 {
		r.Problems = append(r.Problems, "header says FAIL but no item FAILs")
	}
	if len(r.Items) == 0 {
		r.Problems = append(r.Problems, "no checklist items found")
	}
	passed := 0
	for _, it := range r.Items {
		if it.Status == Pass {
			passed++
		}
	}
	if r.Failed >= 0 && r.Failed != len(failed) {
		r.Problems = append(r.Problems, fmt.Sprintf("FAILED: %d/%d but %d item(s) FAIL", r.Failed, r.Total, len(failed)))
	}
	if r.Passed >= 0 && r.Passed != passed {
		r.Problems = append(r.Problems, fmt.Sprintf("PASSED: %d/%d but %d item(s) PASS", r.Passed, r.Total, passed))
	}
	if r.Passed < 0 && r.Failed < 0 {
		r.Problems = append(r.Problems, "no PASSED/FAILED counts")
	}
	if r.Header == Fail && len(failed) > 0 && len(r.Fixes) == 0 {
		r.Problems = append(r.Problems, "no \"Failed items requiring fixes\" list")
	}
}

// clean strips Markdown decoration that does not change meaning: emphasis,
// code spans around a whole line, table pipes, bullets before an item.
func clean(s string) string {
	s = strings.TrimSpace(s)
	s = strings.ReplaceAll(s, "**", "")
	s = strings.ReplaceAll(s, "__", "")
	if strings.HasPrefix(s, "|") {
		// A table row: "| A1 | PASS | file:1 | evidence |".
		cells := strings.Split(strings.Trim(s, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if len(cells) >= 2 {
			s = strings.Join(cells, "  ")
		}
	}
	s = strings.TrimPrefix(s, "`")
	s = strings.TrimSuffix(s, "`")
	return strings.TrimSpace(s)
}

func isSection(line string) bool {
	_, ok := sectionName(line)
	return ok
}

// sectionName recognises "=== A. Name ===" and Markdown headings.
func sectionName(line string) (string, bool) {
	if strings.HasPrefix(line, "===") {
		if m := sectionEq.FindStringSubmatch(line); m != nil && m[1] != "" {
			return m[1], true
		}
	}
	if strings.HasPrefix(line, "#") {
		if m := sectionMd.FindStringSubmatch(line); m != nil && m[1] != "" {
			return m[1], true
		}
	}
	return "", false
}

// parseItem reads "ID STATUS rest", after an optional bullet and marks
// such as ✅.
func parseItem(line string) (Item, bool) {
	line = listMark.ReplaceAllString(line, "")
	line = strings.TrimLeftFunc(line, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	m := item.FindStringSubmatch(line)
	if m == nil {
		return Item{}, false
	}
	it := Item{ID: strings.ToUpper(m[1])}
	switch st := strings.ToUpper(m[2]); {
	case strings.HasPrefix(st, "PASS"):
		it.Status = Pass
	case strings.HasPrefix(st, "FAIL"):
		it.Status = Fail
	default:
		it.Status = NA
	}
	rest := strings.TrimSpace(m[3])
	if lm := location.FindStringSubmatch(rest); lm != nil {
		it.Location = lm[1]
		rest = strings.TrimSpace(rest[len(lm[0]):])
		rest = strings.TrimSpace(strings.TrimLeft(rest, "—–-:"))
	}
	it.Evidence = rest
	return it, true
}
