package comments

import (
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"testing/quick"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/nvidia/adbot/internal/golden"
)

// checkParts verifies what every body Split returns must satisfy.
func checkParts(t *testing.T, p Post, bodies []string) {
	t.Helper()
	limit := p.Limit
	if limit == 0 {
		limit = MaxBody
	}
	if len(bodies) == 0 {
		t.Fatalf("Split returned no bodies")
	}
	for i, b := range bodies {
		if len(b) > limit {
			t.Errorf("part %d/%d is %d bytes, over the limit %d", i+1, len(bodies), len(b), limit)
		}
		if !strings.HasPrefix(b, Prefix) {
			t.Errorf("part %d/%d does not begin %q: %.40q", i+1, len(bodies), Prefix, b)
		}
		if len(bodies) > 1 {
			if want := fmt.Sprintf("(part %d/%d)", i+1, len(bodies)); !strings.Contains(firstLine(b), want) {
				t.Errorf("part %d/%d: first line %q lacks %q", i+1, len(bodies), firstLine(b), want)
			}
		}
		if p.Collapsed {
			if !strings.Contains(b, "<details><summary>") || !strings.HasSuffix(b, "</details>\n") {
				t.Errorf("part %d/%d: <details> not opened and closed", i+1, len(bodies))
			}
		}
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

func roundTrip(t *testing.T, p Post) []string {
	t.Helper()
	bodies, err := Split(p)
	if err != nil {
		t.Fatalf("Split: %v", err)
	}
	checkParts(t, p, bodies)
	got, err := Join(bodies)
	if err != nil {
		t.Fatalf("Join: %v", err)
	}
	if got != p.Log {
		t.Fatalf("Join(Split(log)) differs from the log (%d parts)\n%s", len(bodies), cmp.Diff(got, p.Log))
	}
	return bodies
}

func TestSplitJoinCases(t *testing.T) {
	long := strings.Repeat("x", 3000)
	tests := []struct {
		name  string
		log   string
		limit int
		parts int // 0: don't check
	}{
		{"empty", "", 0, 1},
		{"one line no newline", "hello", 0, 1},
		{"one line", "hello\n", 0, 1},
		{"only newlines", "\n\n\n", 0, 1},
		{"crlf", "a\r\nb\r\n\r\nc", 0, 1},
		{"lone cr", "a\rb\r", 0, 1},
		{"backticks", "```\n````python\nx\n`````\n", 0, 1},
		{"details in log", "</details>\n<details><summary>x</summary>\n</details>", 0, 1},
		{"marker in log", "<!-- adbot:part 1/1 noeol -->\n<!-- adbot:part 9/9 -->", 0, 1},
		{"many lines", strings.Repeat("line of text\n", 500), 1000, 0},
		{"huge line", long, 1000, 0},
		{"huge line with newline", long + "\n" + long + "\n", 1000, 0},
		{"multibyte at cut", strings.Repeat("é€😀", 400), 700, 0},
		{"invalid utf8", strings.Repeat("\xff\x80\x80\x80", 300), 500, 0},
		{"backticks in long log", strings.Repeat("``````\n", 300), 800, 0},
		{"nul bytes", "a\x00b\n\x00", 0, 1},
	}
	for _, tt := range tests {
		for _, fold := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/collapsed=%v", tt.name, fold), func(t *testing.T) {
				p := Post{Title: "pytest log, cycle 2", Intro: "Intro with ```` fences ```` and `code`.", Log: tt.log, Collapsed: fold, Limit: tt.limit}
				bodies := roundTrip(t, p)
				if tt.parts != 0 && len(bodies) != tt.parts {
					t.Errorf("got %d parts, want %d", len(bodies), tt.parts)
				}
			})
		}
	}
}

// TestSplitAtLineBoundaries checks that parts end at line ends when no line
// is longer than a part.
func TestSplitAtLineBoundaries(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 2000; i++ {
		fmt.Fprintf(&b, "line %d %s\n", i, strings.Repeat("y", i%97))
	}
	p := Post{Title: "log", Log: b.String(), Limit: 4096, Collapsed: true}
	bodies := roundTrip(t, p)
	if len(bodies) < 10 {
		t.Fatalf("got %d parts, want many", len(bodies))
	}
	for i, body := range bodies {
		c, _, _, err := parsePart(body)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(c, "\n") {
			t.Errorf("part %d ends inside a line: %q", i+1, c[max(0, len(c)-20):])
		}
		if strings.Contains(body, "continues in part") {
			t.Errorf("part %d has a cut note but no line was too long", i+1)
		}
	}
}

func TestSplitLongLineCutAtRune(t *testing.T) {
	p := Post{Title: "t", Log: strings.Repeat("€", 1000), Limit: 600}
	bodies := roundTrip(t, p)
	for i, body := range bodies[:len(bodies)-1] {
		c, _, _, err := parsePart(body)
		if err != nil {
			t.Fatal(err)
		}
		if !utf8.ValidString(c) {
			t.Errorf("part %d was cut inside a rune", i+1)
		}
		if !strings.Contains(body, fmt.Sprintf("continues in part %d/%d", i+2, len(bodies))) {
			t.Errorf("part %d lacks the cut note", i+1)
		}
	}
}

func TestSplitFence(t *testing.T) {
	bodies := roundTrip(t, Post{Title: "t", Log: "a\n``````` seven\n"})
	if !strings.Contains(bodies[0], "\n````````text\n") {
		t.Errorf("want an eight-backtick fence:\n%s", bodies[0])
	}
	bodies = roundTrip(t, Post{Title: "t", Log: "plain\n", Lang: "py`thon\n"})
	if !strings.Contains(bodies[0], "\n```python\n") {
		t.Errorf("want a three-backtick fence with a cleaned info string:\n%s", bodies[0])
	}
}

func TestSplitTooSmall(t *testing.T) {
	_, err := Split(Post{Title: "t", Log: "x", Limit: 20})
	if !errors.Is(err, ErrTooSmall) {
		t.Fatalf("Split with a tiny limit: got %v, want ErrTooSmall", err)
	}
	_, err = Split(Post{Title: "t", Intro: strings.Repeat("i", MaxBody), Log: "x"})
	if !errors.Is(err, ErrTooSmall) {
		t.Fatalf("Split with a huge intro: got %v, want ErrTooSmall", err)
	}
}

func TestSplitPartCountGainsDigit(t *testing.T) {
	// Around 9-10 and 99-100 parts the markup grows; every part must still fit.
	for _, lines := range []int{80, 90, 95, 100, 105, 900, 1000} {
		p := Post{Title: "t", Log: strings.Repeat("0123456789\n", lines), Limit: 250, Collapsed: true}
		roundTrip(t, p)
	}
}

func TestJoinErrors(t *testing.T) {
	ok, err := Split(Post{Title: "t", Log: strings.Repeat("line\n", 100), Limit: 200})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		bodies []string
		want   string
	}{
		{"none", nil, "no parts"},
		{"missing part", ok[1:], "it says it is part 2/"},
		{"reordered", append([]string{ok[1], ok[0]}, ok[2:]...), "it says it is part 2/"},
		{"no prefix", []string{"hello"}, "does not begin"},
		{"no marker", []string{Prefix + "x\n```text\na\n```\n"}, "no part marker"},
		{"bad marker", []string{Prefix + "x\n```text\na\n```\n<!-- adbot:part x/y -->\n"}, "want \"i/n\""},
		{"no fence", []string{Prefix + "x\n<!-- adbot:part 1/1 -->\n"}, "no code fence"},
		{"fence not alone", []string{Prefix + "x\n```text\na```\n<!-- adbot:part 1/1 -->\n"}, "not on a line of its own"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Join(tt.bodies)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Join: got error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// genLog builds logs from the pieces that stress the splitter.
func genLog(r *rand.Rand) string {
	pieces := []string{
		"\n", "\r\n", "\r", "```", "````", "`", "</details>", "<details>", "<!-- adbot:part 1/2 noeol -->",
		"é", "€", "😀", "\xff", "\x80", "word ", "[PROMPT 0] How big is the universe? : ", "\t", " ",
		strings.Repeat("z", 300), strings.Repeat("€", 150),
	}
	n := r.Intn(400)
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString(pieces[r.Intn(len(pieces))])
	}
	return b.String()
}

func TestSplitJoinProperty(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 300; i++ {
		p := Post{
			Title:     "log",
			Intro:     []string{"", "some *intro*"}[r.Intn(2)],
			Log:       genLog(r),
			Collapsed: r.Intn(2) == 0,
			Limit:     300 + r.Intn(800),
		}
		roundTrip(t, p)
	}
	// And arbitrary strings from testing/quick.
	f := func(log string, fold bool, extra uint16) bool {
		p := Post{Title: "quick", Log: log, Collapsed: fold, Limit: 300 + int(extra%2000)}
		bodies, err := Split(p)
		if err != nil {
			t.Logf("Split: %v", err)
			return false
		}
		for _, b := range bodies {
			if len(b) > p.Limit {
				return false
			}
		}
		got, err := Join(bodies)
		return err == nil && got == log
	}
	if err := quick.Check(f, &quick.Config{MaxCount: 500, Rand: rand.New(rand.NewSource(2))}); err != nil {
		t.Fatal(err)
	}
}

func TestSplitBigLog(t *testing.T) {
	// A log of a few megabytes at the real limit.
	var b strings.Builder
	for i := 0; b.Len() < 3<<20; i++ {
		fmt.Fprintf(&b, "[11/27/2026-10:00:00] [TRT-LLM AUTO-DEPLOY] [I] step %d %s\n", i, strings.Repeat("ab", i%300))
	}
	bodies := roundTrip(t, Post{Title: "e2e log", Log: b.String(), Collapsed: true})
	if len(bodies) < 48 {
		t.Errorf("got %d parts for %d bytes", len(bodies), b.Len())
	}
}

func FuzzSplitJoin(f *testing.F) {
	f.Add("", false, 0)
	f.Add("a\nb\n", true, 200)
	f.Add("```\n</details>\r\n€😀", true, 150)
	f.Add(strings.Repeat("x", 1000), false, 180)
	f.Add(strings.Repeat("€\n", 300), true, 170)
	f.Fuzz(func(t *testing.T, log string, fold bool, limit int) {
		if limit < 0 || limit > MaxBody {
			limit = 0
		} else if limit != 0 {
			limit = 300 + limit%5000
		}
		p := Post{Title: "fuzz", Log: log, Collapsed: fold, Limit: limit}
		roundTrip(t, p)
	})
}

func TestGolden(t *testing.T) {
	var b strings.Builder
	b.WriteString("============================= test session starts ==============================\n")
	b.WriteString("collected 3 items\n\n")
	for i := 0; i < 12; i++ {
		fmt.Fprintf(&b, "tests/unittest/auto_deploy/singlegpu/models/test_qwen3.py::test_case[%d] PASSED [%3d%%]\n", i, i*8)
	}
	b.WriteString("A fence in the log:\n```python\nprint('x')\n```\n</details> in the log\n")
	b.WriteString(strings.Repeat("€", 120) + "\n")
	b.WriteString("========================= 12 passed in 4.21s =========================")
	tests := []struct {
		name string
		post Post
	}{
		{"multipart-collapsed", Post{Title: "pytest log, cycle 2", Intro: "Unit tests for `Qwen/Qwen3-0.6B`.", Log: b.String(), Collapsed: true, Limit: 700}},
		{"multipart-open", Post{Title: "pytest log, cycle 2", Log: b.String(), Lang: "console", Limit: 900}},
		{"single", Post{Title: "e2e log", Intro: "All prompts answered.", Log: "[PROMPT 0] How big is the universe? : Very.\n", Collapsed: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bodies := roundTrip(t, tt.post)
			var got strings.Builder
			for i, body := range bodies {
				fmt.Fprintf(&got, "<!-- ===== comment %d of %d, %d bytes ===== -->\n", i+1, len(bodies), len(body))
				got.WriteString(body)
			}
			golden.Check(t, tt.name+".golden.md", []byte(got.String()))
		})
	}
}

func TestFence(t *testing.T) {
	tests := []struct {
		text, lang, want string
	}{
		{"x", "", "```text\nx\n```\n"},
		{"x\n", "python", "```python\nx\n```\n"},
		{"a\n```\nb", "", "````text\na\n```\nb\n````\n"},
		{"", "", "```text\n\n```\n"},
	}
	for _, tt := range tests {
		if got := Fence(tt.text, tt.lang); got != tt.want {
			t.Errorf("Fence(%q, %q) = %q, want %q", tt.text, tt.lang, got, tt.want)
		}
	}
}
