package pytest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// The files under testdata/ were recorded from real pytest runs of the suites
// in testdata/src (see record.sh there).

func TestParseConsoleRecorded(t *testing.T) {
	mixedShort := []ShortLine{
		{Kind: "FAILED", NodeID: "test_mixed.py::test_fail_assert", Message: "AssertionError: logits differ"},
		{Kind: "FAILED", NodeID: "test_mixed.py::test_fail_exception", Message: "ValueError: rmse ratio 0.31 > tol..."},
		{Kind: "FAILED", NodeID: "test_mixed.py::TestBlock::test_attention", Message: "AssertionError: attention o..."},
		{Kind: "ERROR", NodeID: "test_mixed.py::test_error", Message: "RuntimeError: fixture set-up failed"},
	}
	mixedCounts := map[string]int{"failed": 3, "passed": 5, "skipped": 2, "xfailed": 1, "xpassed": 1, "warning": 1, "error": 1}
	tests := []struct {
		file string
		want Console
		ok   bool
	}{
		{"mixed.log", Console{Collected: 13, Counts: mixedCounts, Seconds: 0.02,
			SummaryLine: "3 failed, 5 passed, 2 skipped, 1 xfailed, 1 xpassed, 1 warning, 1 error in 0.02s", Short: mixedShort}, false},
		{"mixed-quiet.log", Console{Collected: 13, Counts: mixedCounts, Seconds: 0.02,
			SummaryLine: "3 failed, 5 passed, 2 skipped, 1 xfailed, 1 xpassed, 1 warning, 1 error in 0.02s", Short: mixedShort}, false},
		{"pass.log", Console{Collected: 5, Counts: map[string]int{"passed": 5}, Seconds: 0.01, SummaryLine: "5 passed in 0.01s"}, true},
		{"no-tests.log", Console{Collected: 0, Counts: map[string]int{}, NoTestsRan: true, SummaryLine: "no tests ran in 0.00s"}, false},
		{"deselected.log", Console{Collected: 5, Deselected: 4, Selected: 1, Counts: map[string]int{"passed": 1, "deselected": 4}, Seconds: 0.01,
			SummaryLine: "1 passed, 4 deselected in 0.01s"}, true},
		{"collect-error.log", Console{Collected: 0, CollectionErrors: 1, Counts: map[string]int{"error": 1}, Seconds: 0.03, SummaryLine: "1 error in 0.03s",
			Short: []ShortLine{{Kind: "ERROR", NodeID: "test_collect_error.py"}}, Interrupted: "1 error during collection"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := ParseConsoleFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(*got, tt.want, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
			if got.OK() != tt.ok {
				t.Errorf("OK() = %v, want %v", got.OK(), tt.ok)
			}
		})
	}
}

func TestParseConsoleShortAll(t *testing.T) {
	c, err := ParseConsoleFile(filepath.Join("testdata", "mixed-ra.log"))
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, s := range c.Short {
		kinds[s.Kind]++
	}
	want := map[string]int{"PASSED": 5, "SKIPPED": 2, "XFAIL": 1, "XPASS": 1, "ERROR": 1, "FAILED": 3}
	if diff := cmp.Diff(kinds, want); diff != "" {
		t.Errorf("short summary kinds (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(c.Short[5], ShortLine{Kind: "SKIPPED", NodeID: "[1] test_mixed.py:32", Message: "HF class unavailable in installed transformers"}); diff != "" {
		t.Errorf("SKIPPED line (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(c.Short[8], ShortLine{Kind: "XPASS", NodeID: "test_mixed.py::test_xpass", Message: "expected to fail but passes"}); diff != "" {
		t.Errorf("XPASS line (-got +want):\n%s", diff)
	}
	if len(c.Failed()) != 4 {
		t.Errorf("Failed() = %v", c.Failed())
	}
}

func TestParseConsoleLines(t *testing.T) {
	tests := []struct {
		name   string
		log    string
		counts map[string]int
		secs   float64
		short  []ShortLine
	}{
		{"long run with clock", "===== 12 passed, 3 warnings in 125.31s (0:02:05) =====\n", map[string]int{"passed": 12, "warning": 3}, 125.31, nil},
		{"quiet", "..F\n1 failed, 2 passed in 0.12s\n", map[string]int{"failed": 1, "passed": 2}, 0.12, nil},
		{"colour", "\x1b[31m===== \x1b[31m\x1b[1m1 failed\x1b[0m, \x1b[32m2 passed\x1b[0m\x1b[31m in 0.12s\x1b[0m\x1b[31m =====\x1b[0m\n", map[string]int{"failed": 1, "passed": 2}, 0.12, nil},
		{"errors plural, rerun", "= 2 errors, 1 rerun in 1.00s =\n", map[string]int{"error": 2, "rerun": 1}, 1, nil},
		{"last summary wins", "= 1 passed in 1.00s =\n= 2 failed in 2.00s =\n", map[string]int{"failed": 2}, 2, nil},
		{"param with dash", "=== short test summary info ===\nFAILED t.py::test_x[a - b] - AssertionError: no\n= 1 failed in 0.10s =\n",
			map[string]int{"failed": 1}, 0.1, []ShortLine{{Kind: "FAILED", NodeID: "t.py::test_x[a - b]", Message: "AssertionError: no"}}},
		{"crlf", "=== short test summary info ===\r\nFAILED t.py::test_y\r\n= 1 failed in 0.10s =\r\n",
			map[string]int{"failed": 1}, 0.1, []ShortLine{{Kind: "FAILED", NodeID: "t.py::test_y"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseConsole(strings.NewReader(tt.log))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.Counts, tt.counts); diff != "" {
				t.Errorf("counts (-got +want):\n%s", diff)
			}
			if c.Seconds != tt.secs {
				t.Errorf("seconds = %v, want %v", c.Seconds, tt.secs)
			}
			if diff := cmp.Diff(c.Short, tt.short, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("short (-got +want):\n%s", diff)
			}
		})
	}
}

func TestParseConsoleErrors(t *testing.T) {
	// A run killed before its summary.
	b, err := os.ReadFile(filepath.Join("testdata", "mixed.log"))
	if err != nil {
		t.Fatal(err)
	}
	cut := string(b[:len(b)/2])
	_, err = ParseConsole(strings.NewReader(cut))
	if err == nil || !strings.Contains(err.Error(), "no final summary line") {
		t.Fatalf("got %v", err)
	}
	_, err = ParseConsoleFile(filepath.Join("testdata", "absent.log"))
	if err == nil || !strings.Contains(err.Error(), "absent.log") {
		t.Fatalf("got %v", err)
	}
}

func TestParseJUnitRecorded(t *testing.T) {
	rep, err := ParseJUnitFile(filepath.Join("testdata", "mixed.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := [4]int{rep.Tests, rep.Failures, rep.Errors, rep.Skipped}, [4]int{13, 3, 1, 3}; got != want {
		t.Errorf("totals = %v, want %v", got, want)
	}
	if len(rep.Problems) != 0 {
		t.Errorf("problems: %v", rep.Problems)
	}
	outcomes := map[string]Outcome{}
	for _, c := range rep.Cases {
		outcomes[c.ID] = c.Outcome
	}
	want := map[string]Outcome{
		"test_mixed::test_pass": Passed, "test_mixed::test_param_pass[bfloat16]": Passed, "test_mixed::test_param_pass[float16]": Passed,
		"test_mixed::test_fail_assert": Failed, "test_mixed::test_fail_exception": Failed, "test_mixed::test_skip": Skipped,
		"test_mixed::test_skipif": Skipped, "test_mixed::test_error": Error, "test_mixed::test_xfail": XFailed,
		"test_mixed::test_xpass": Passed, "test_mixed::test_warns": Passed, "test_mixed.TestBlock::test_mlp": Passed,
		"test_mixed.TestBlock::test_attention": Failed,
	}
	if diff := cmp.Diff(outcomes, want); diff != "" {
		t.Errorf("outcomes (-got +want):\n%s", diff)
	}
	f := rep.Failing()
	if len(f) != 4 || f[0].Message != "AssertionError: logits differ\nassert [1, 2, 4] == [1, 2, 3]\n  At index 2 diff: 4 != 3\n  Full diff:\n  - [1, 2, 3]\n  ?        ^\n  + [1, 2, 4]\n  ?        ^" {
		t.Errorf("first failure: %+v", f[0])
	}
	if !strings.HasSuffix(f[0].Detail, "test_mixed.py:24: AssertionError") {
		t.Errorf("failure detail: %q", f[0].Detail)
	}
	if f[2].Message != `failed on setup with "RuntimeError: fixture set-up failed"` {
		t.Errorf("error message: %q", f[2].Message)
	}
	if rep.OK() {
		t.Error("OK() on a failing report")
	}
}

func TestParseJUnitSmall(t *testing.T) {
	tests := []struct {
		file   string
		totals [4]int
		ok     bool
	}{
		{"pass.xml", [4]int{5, 0, 0, 0}, true},
		{"no-tests.xml", [4]int{0, 0, 0, 0}, false},
		{"deselected.xml", [4]int{1, 0, 0, 0}, true},
		{"collect-error.xml", [4]int{1, 0, 1, 0}, false},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			rep, err := ParseJUnitFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if got := [4]int{rep.Tests, rep.Failures, rep.Errors, rep.Skipped}; got != tt.totals {
				t.Errorf("totals = %v, want %v", got, tt.totals)
			}
			if rep.OK() != tt.ok {
				t.Errorf("OK() = %v", rep.OK())
			}
		})
	}
}

func TestParseJUnitShapes(t *testing.T) {
	lone := `<?xml version="1.0"?><testsuite name="pytest" tests="2" failures="1" errors="1" skipped="0">` +
		`<testcase classname="t" name="a"><failure message="boom">tb</failure><error message="teardown">tb2</error></testcase>` +
		`<testcase classname="t" name="b"/></testsuite>`
	rep, err := ParseJUnit(strings.NewReader(lone))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failures != 1 || rep.Errors != 1 || rep.Cases[0].Outcome != Failed || len(rep.Problems) != 0 {
		t.Errorf("lone testsuite: %+v", rep)
	}
	wrong := `<testsuites><testsuite tests="3" failures="0" errors="0" skipped="0"><testcase name="a"/></testsuite></testsuites>`
	rep, err = ParseJUnit(strings.NewReader(wrong))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rep.Problems, []string{"tests=3 but 1 such test cases"}); diff != "" {
		t.Errorf("problems (-got +want):\n%s", diff)
	}
}

func TestParseJUnitErrors(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "mixed.xml"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, xml, want string
	}{
		{"truncated", string(b[:len(b)*2/3]), "junit XML: XML syntax error on line 21: unexpected EOF"},
		{"empty", "", "junit XML: empty document"},
		{"other root", "<html></html>", "junit XML: root element <html>, want <testsuites> or <testsuite>"},
		{"bad count", `<testsuite tests="x"></testsuite>`, `junit XML: testsuite 1: count "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseJUnit(strings.NewReader(tt.xml))
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("got %v, want prefix %q", err, tt.want)
			}
		})
	}
}

func FuzzParseConsole(f *testing.F) {
	for _, name := range []string{"mixed.log", "collect-error.log", "no-tests.log"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, log string) {
		c, err := ParseConsole(strings.NewReader(log))
		if err != nil {
			return
		}
		if c.SummaryLine == "" {
			t.Error("parsed without a summary line")
		}
		if c.OK() && (c.Counts["failed"] > 0 || c.Counts["error"] > 0) {
			t.Error("OK with failures")
		}
	})
}

func FuzzParseJUnit(f *testing.F) {
	for _, name := range []string{"mixed.xml", "pass.xml", "collect-error.xml"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := ParseJUnit(strings.NewReader(string(b)))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "junit XML: ") {
				t.Errorf("error without context: %v", err)
			}
			return
		}
		if rep.Tests != len(rep.Cases) {
			t.Errorf("tests %d, cases %d", rep.Tests, len(rep.Cases))
		}
	})
}

func TestJUnitName(t *testing.T) {
	tests := []struct{ id, cls, name string }{
		{"tests/models/test_x.py::TestBlock::test_mlp[a::b]", "tests.models.test_x.TestBlock", "test_mlp[a::b]"},
		{"test_mixed.py::test_xpass", "test_mixed", "test_xpass"},
		{"test_collect_error.py", "", "test_collect_error"},
	}
	for _, tt := range tests {
		cls, name := JUnitName(tt.id)
		if cls != tt.cls || name != tt.name {
			t.Errorf("JUnitName(%q) = %q, %q", tt.id, cls, name)
		}
	}
}

func TestApplyConsole(t *testing.T) {
	rep, err := ParseJUnitFile(filepath.Join("testdata", "mixed-ra.xml"))
	if err != nil {
		t.Fatal(err)
	}
	con, err := ParseConsoleFile(filepath.Join("testdata", "mixed-ra.log"))
	if err != nil {
		t.Fatal(err)
	}
	if n := rep.ApplyConsole(con); n != 1 {
		t.Fatalf("changed %d cases, want 1", n)
	}
	if rep.Count(XPassed) != 1 || rep.Count(Passed) != 5 {
		t.Errorf("xpassed %d passed %d", rep.Count(XPassed), rep.Count(Passed))
	}
	for _, c := range rep.Cases {
		if c.Name == "test_xpass" && c.Outcome != XPassed {
			t.Errorf("test_xpass is %s", c.Outcome)
		}
	}
}
