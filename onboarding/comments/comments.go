// Package comments turns a log of any length into GitHub comment bodies and
// back.
//
// GitHub refuses a comment body longer than 65,536 characters. adbot posts
// logs complete and verbatim, so a long log becomes several comments, each
// beginning "[AGENT] ", numbered "(part i/n)", cut at line boundaries, with the
// code fence (and the optional <details> block) closed at the end of every part
// and reopened at the start of the next. Join reads the parts back and returns
// the log byte for byte: Join(Split(p)) == p.Log for every Log.
//
// The layout of one part (lines in brackets are optional):
//
//	[AGENT] <title> [(part i/n)]
//	<blank>
//	[<intro>, part 1 only, followed by a blank line]
//	[<details><summary><title> [(part i/n)]</summary>]
//	[<blank>]
//	<fence><lang>
//	<content, verbatim>[\n added when the content does not end in one]
//	<fence>
//	[_note when a line continues in the next part_]
//	<!-- adbot:part i/n[ noeol] -->
//	[<blank>]
//	[</details>]
//
// The fence is one backtick longer than the longest run of backticks in the
// log (at least three), so nothing in the log can close it (CommonMark). The
// "noeol" flag of the hidden marker says that the newline before the closing
// fence was added and is not part of the log: the part either ends the log
// without a final newline, or ends inside a line too long for one part (cut at
// a UTF-8 rune boundary as a last resort). Everything after the closing fence
// is free of backticks, which is what lets Join find the fences whatever the
// title and intro hold.
package comments

import (
	"errors"
	"fmt"
	"html"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxBody is the most a comment body may hold on GitHub: 65,536 characters.
// Split measures bodies in bytes of UTF-8, which are never fewer than
// characters, so a part within MaxBody bytes is always within GitHub's limit.
const MaxBody = 65536

// Prefix begins every comment adbot writes; adbot ignores comments that
// begin with it.
const Prefix = "[AGENT] "

// DefaultLang is the fence info string used when Post.Lang is empty.
const DefaultLang = "text"

// Post is one log to publish as one or more comments.
type Post struct {
	// Title names the log, e.g. "pytest log, cycle 2". It is kept on one line.
	Title string
	// Intro is optional Markdown placed before the log in the first part.
	Intro string
	// Log is the verbatim text; any bytes, any length.
	Log string
	// Lang is the fence's info string ("text" when empty).
	Lang string
	// Collapsed wraps the log in <details><summary>Title</summary>.
	Collapsed bool
	// Limit is the most bytes a body may hold; 0 means MaxBody.
	Limit int
}

// ErrTooSmall is returned by Split when the title, intro and markup leave no
// room for the log within Limit.
var ErrTooSmall = errors.New("comment limit leaves no room for the log")

// minContent is the least room a part must leave for the log: one rune.
const minContent = utf8.UTFMax

// maxRounds bounds the search for a stable part count (it changes only when
// the count gains a digit).
const maxRounds = 12

// Split renders p as comment bodies of at most p.Limit bytes each (MaxBody
// when zero). It fails only when the title and intro leave no room for the
// log; it never fails for Limit 0 with a one-line title and an intro of a few
// kilobytes.
func Split(p Post) ([]string, error) {
	limit := p.Limit
	if limit <= 0 {
		limit = MaxBody
	}
	r := newRenderer(p)
	n := 1
	for round := 0; round < maxRounds; round++ {
		chunks, err := r.cut(n, limit)
		if err != nil {
			return nil, err
		}
		if len(chunks) == n {
			bodies := make([]string, n)
			for i, c := range chunks {
				bodies[i] = r.render(i+1, n, c)
			}
			return bodies, nil
		}
		// More parts cost more markup ("(part i/n)" appears), so the count
		// only grows: n settles within a few rounds.
		n = max(n, len(chunks))
	}
	return nil, fmt.Errorf("split %q: part count did not settle", p.Title)
}

// chunk is one part's share of the log.
type chunk struct {
	text string
	// midLine is true when the part ends inside a line that continues in the
	// next part.
	midLine bool
}

type renderer struct {
	title string
	intro string
	lang  string
	fence string
	fold  bool
	log   string
}

func newRenderer(p Post) *renderer {
	lang := p.Lang
	if lang == "" {
		lang = DefaultLang
	}
	// An info string may not hold a backtick or a line break (CommonMark).
	lang = strings.Map(func(r rune) rune {
		switch r {
		case '`', '\n', '\r':
			return -1
		}
		return r
	}, lang)
	return &renderer{
		title: oneLine(p.Title),
		intro: strings.TrimRight(p.Intro, "\n"),
		lang:  lang,
		fence: strings.Repeat("`", max(3, longestRun(p.Log, '`')+1)),
		fold:  p.Collapsed,
		log:   p.Log,
	}
}

// oneLine keeps a title on one line.
func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\r\n", " ")
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, strings.TrimSpace(s))
}

// longestRun is the length of the longest run of c in s.
func longestRun(s string, c byte) int {
	best, cur := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			cur++
			best = max(best, cur)
		} else {
			cur = 0
		}
	}
	return best
}

// overhead is the size of part i of n without its content, assuming the
// worst case for the trailer (an added newline and a cut note).
func (r *renderer) overhead(i, n int) int {
	return len(r.render(i, n, chunk{midLine: true}))
}

// cut shares the log among parts, assuming n parts in all.
func (r *renderer) cut(n, limit int) ([]chunk, error) {
	log := r.log
	var chunks []chunk
	pos := 0
	for i := 1; ; i++ {
		budget := limit - r.overhead(i, n)
		if budget < minContent {
			return nil, fmt.Errorf("split %q into bodies of %d bytes: %w", r.title, limit, ErrTooSmall)
		}
		rest := log[pos:]
		if len(rest) <= budget {
			chunks = append(chunks, chunk{text: rest})
			return chunks, nil
		}
		end := strings.LastIndexByte(rest[:budget], '\n') + 1
		mid := false
		if end == 0 {
			// One line longer than a part: cut it at a rune boundary.
			end, mid = budget, true
			for k := 0; k < utf8.UTFMax-1 && end > 0 && !utf8.RuneStart(rest[end]); k++ {
				end--
			}
			if end == 0 || !utf8.RuneStart(rest[end]) {
				end = budget // not UTF-8 here: any byte boundary will do
			}
		}
		chunks = append(chunks, chunk{text: rest[:end], midLine: mid})
		pos += end
		if pos == len(log) {
			return chunks, nil
		}
	}
}

// render writes part i of n holding c.
func (r *renderer) render(i, n int, c chunk) string {
	var b strings.Builder
	part := ""
	if n > 1 {
		part = fmt.Sprintf(" (part %d/%d)", i, n)
	}
	b.WriteString(Prefix)
	b.WriteString(r.title)
	b.WriteString(part)
	b.WriteString("\n\n")
	if i == 1 && r.intro != "" {
		b.WriteString(r.intro)
		b.WriteString("\n\n")
	}
	if r.fold {
		b.WriteString("<details><summary>")
		b.WriteString(html.EscapeString(r.title))
		b.WriteString(part)
		b.WriteString("</summary>\n\n")
	}
	b.WriteString(r.fence)
	b.WriteString(r.lang)
	b.WriteString("\n")
	b.WriteString(c.text)
	noeol := !strings.HasSuffix(c.text, "\n")
	if noeol {
		b.WriteString("\n")
	}
	b.WriteString(r.fence)
	b.WriteString("\n")
	if c.midLine {
		fmt.Fprintf(&b, "_The last line continues in part %d/%d._\n", i+1, n)
	}
	b.WriteString(marker)
	b.WriteString(strconv.Itoa(i))
	b.WriteString("/")
	b.WriteString(strconv.Itoa(n))
	if noeol {
		b.WriteString(" " + flagNoEOL)
	}
	b.WriteString(" -->\n")
	if r.fold {
		b.WriteString("\n</details>\n")
	}
	return b.String()
}

const (
	marker    = "<!-- adbot:part "
	flagNoEOL = "noeol"
)
