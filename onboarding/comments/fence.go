package comments

import "strings"

// Fence returns text as a fenced code block that nothing in text can close:
// the fence is one backtick longer than text's longest backtick run (at
// least three). lang is the info string ("text" when empty). The block ends
// with a newline; a newline is added before the closing fence when text
// lacks one, so text that does not end in a newline is shown the same as
// text that does.
func Fence(text, lang string) string {
	r := newRenderer(Post{Log: text, Lang: lang})
	var b strings.Builder
	b.Grow(len(text) + 2*len(r.fence) + len(r.lang) + 3)
	b.WriteString(r.fence)
	b.WriteString(r.lang)
	b.WriteString("\n")
	b.WriteString(text)
	if !strings.HasSuffix(text, "\n") {
		b.WriteString("\n")
	}
	b.WriteString(r.fence)
	b.WriteString("\n")
	return b.String()
}
