package gittest

import (
	"testing"
)

func TestBareRepo(t *testing.T) {
	bare := BareRepo(t, "hello\n")
	if got := Git(t, bare, "rev-parse", "--is-bare-repository"); got != "true" {
		t.Errorf("--is-bare-repository = %q", got)
	}
	if got := Git(t, bare, "show", "main:README.md"); got != "hello" {
		t.Errorf("README.md on main = %q, want hello", got)
	}
	if got := Git(t, bare, "log", "--format=%an <%ae> %s", "main"); got != "t <t@example.com> first" {
		t.Errorf("log = %q", got)
	}
}
