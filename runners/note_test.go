package runners

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestClipNote: a long failure is cut between runes, never inside one.
func TestClipNote(t *testing.T) {
	for _, s := range []string{strings.Repeat("é", 800), "x" + strings.Repeat("日本", 400), strings.Repeat("a", maxNote+1)} {
		got := clipNote(s)
		if !utf8.ValidString(got) || len(got) > maxNote+len("…") || !strings.HasSuffix(got, "…") {
			t.Errorf("clipNote(%d bytes) = %d bytes, valid UTF-8 %v", len(s), len(got), utf8.ValidString(got))
		}
	}
	if got := clipNote("short"); got != "short" {
		t.Errorf("clipNote(short) = %q", got)
	}
}
