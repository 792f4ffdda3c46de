// Package pytest reads pytest's results: the JUnit XML report
// (pytest --junitxml) and the console log (its final summary line, the
// collected count and the short test summary).
package pytest

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Outcome is what became of one test.
type Outcome string

// Outcomes. JUnit XML cannot tell an unexpected pass (xpassed) from a pass;
// the console log can.
const (
	Passed  Outcome = "passed"
	Failed  Outcome = "failed"
	Error   Outcome = "error"
	Skipped Outcome = "skipped"
	XFailed Outcome = "xfailed"
	XPassed Outcome = "xpassed"
)

// Case is one test case of a JUnit report.
type Case struct {
	// ID is the pytest node id rebuilt from classname and name, e.g.
	// "tests/test_x.py::TestBlock::test_mlp" is reported as
	// "tests.test_x.TestBlock::test_mlp"; it is the classname, "::" and the name.
	ID        string
	ClassName string
	Name      string
	Outcome   Outcome
	// Seconds is the time pytest reports for the case.
	Seconds float64
	// Message is the failure, error or skip message; Detail the text below
	// it (the traceback).
	Message string
	Detail  string
}

// Report is a parsed JUnit XML report, summed over its test suites.
type Report struct {
	Tests    int
	Failures int
	Errors   int
	Skipped  int
	Seconds  float64
	Cases    []Case
	// Problems lists where the suites' stated totals disagree with their
	// test cases (the counts above are the cases').
	Problems []string
}

// Count returns the number of cases with outcome o.
func (r *Report) Count(o Outcome) int {
	n := 0
	for _, c := range r.Cases {
		if c.Outcome == o {
			n++
		}
	}
	return n
}

// OK reports whether the run passed: at least one test, none failed or in error.
func (r *Report) OK() bool {
	return r.Tests > 0 && r.Failures == 0 && r.Errors == 0 && r.Count(Passed)+r.Count(XPassed) > 0
}

// Failing returns the cases that failed or errored, in report order.
func (r *Report) Failing() []Case {
	var out []Case
	for _, c := range r.Cases {
		if c.Outcome == Failed || c.Outcome == Error {
			out = append(out, c)
		}
	}
	return out
}

type xmlSuites struct {
	XMLName xml.Name
	Suites  []xmlSuite `xml:"testsuite"`
	// A lone <testsuite> root (junit_family=xunit1, old pytest) keeps its
	// fields here.
	xmlSuite
}

type xmlSuite struct {
	Tests    string    `xml:"tests,attr"`
	Failures string    `xml:"failures,attr"`
	Errors   string    `xml:"errors,attr"`
	Skipped  string    `xml:"skipped,attr"`
	Skips    string    `xml:"skips,attr"`
	Time     string    `xml:"time,attr"`
	Cases    []xmlCase `xml:"testcase"`
}

type xmlCase struct {
	ClassName string     `xml:"classname,attr"`
	Name      string     `xml:"name,attr"`
	Time      string     `xml:"time,attr"`
	Failure   []xmlIssue `xml:"failure"`
	Error     []xmlIssue `xml:"error"`
	Skipped   []xmlIssue `xml:"skipped"`
}

type xmlIssue struct {
	Type    string `xml:"type,attr"`
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// ParseJUnit reads a JUnit XML report as pytest writes it (a <testsuites>
// root holding <testsuite> elements, or a lone <testsuite>). The totals are
// counted from the cases, and any disagreement with the stated totals is
// listed in Problems. XML that is not well formed is an error that gives its
// line.
func ParseJUnit(r io.Reader) (*Report, error) {
	dec := xml.NewDecoder(r)
	var root xmlSuites
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("junit XML: empty document")
		}
		var syn *xml.SyntaxError
		if errors.As(err, &syn) {
			return nil, fmt.Errorf("junit XML: %w", err) // it gives the line
		}
		line, _ := dec.InputPos()
		return nil, fmt.Errorf("junit XML: line %d: %w", line, err)
	}
	var suites []xmlSuite
	switch root.XMLName.Local {
	case "testsuites":
		suites = root.Suites
	case "testsuite":
		suites = []xmlSuite{root.xmlSuite}
	default:
		return nil, fmt.Errorf("junit XML: root element <%s>, want <testsuites> or <testsuite>", root.XMLName.Local)
	}
	rep := &Report{}
	stated := [4]int{}
	for i, s := range suites {
		for j, attr := range []string{s.Tests, s.Failures, s.Errors, firstNonEmpty(s.Skipped, s.Skips)} {
			if attr == "" {
				continue
			}
			n, err := strconv.Atoi(attr)
			if err != nil {
				return nil, fmt.Errorf("junit XML: testsuite %d: count %q: %w", i+1, attr, err)
			}
			stated[j] += n
		}
		if t, err := strconv.ParseFloat(s.Time, 64); err == nil {
			rep.Seconds += t
		}
		for _, c := range s.Cases {
			rep.Cases = append(rep.Cases, toCase(c))
			// Counted as pytest counts them: a test that fails and then
			// errors at teardown is both a failure and an error.
			rep.Failures += min(len(c.Failure), 1)
			rep.Errors += min(len(c.Error), 1)
			rep.Skipped += min(len(c.Skipped), 1)
		}
	}
	rep.Tests = len(rep.Cases)
	counted := [4]int{rep.Tests, rep.Failures, rep.Errors, rep.Skipped}
	names := [4]string{"tests", "failures", "errors", "skipped"}
	for k := range stated {
		if stated[k] != counted[k] {
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s=%d but %d such test cases", names[k], stated[k], counted[k]))
		}
	}
	return rep, nil
}

// ParseJUnitFile is ParseJUnit on a file; errors name the file.
func ParseJUnitFile(path string) (*Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open junit XML: %w", err)
	}
	defer f.Close()
	rep, err := ParseJUnit(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rep, nil
}

func toCase(c xmlCase) Case {
	out := Case{ClassName: c.ClassName, Name: c.Name, Outcome: Passed}
	out.ID = c.Name
	if c.ClassName != "" {
		out.ID = c.ClassName + "::" + c.Name
	}
	out.Seconds, _ = strconv.ParseFloat(c.Time, 64)
	pick := func(o Outcome, is []xmlIssue) {
		out.Outcome = o
		out.Message = is[0].Message
		out.Detail = strings.TrimSpace(is[0].Text)
	}
	switch {
	case len(c.Failure) > 0:
		pick(Failed, c.Failure)
	case len(c.Error) > 0:
		pick(Error, c.Error)
	case len(c.Skipped) > 0:
		if c.Skipped[0].Type == "pytest.xfail" {
			pick(XFailed, c.Skipped)
		} else {
			pick(Skipped, c.Skipped)
		}
	}
	return out
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
