// Package hub reads model metadata from the HuggingFace Hub and checks model ids.
package hub

import (
	"fmt"
	"strings"
)

// MaxNamePart is the longest an org or a model name may be.
const MaxNamePart = 96

// ValidateModelID checks that id is a HuggingFace repo id: org/name, each part
// of letters, digits, '-', '_' and '.', no "..", not starting or ending with
// '-' or '.', at most MaxNamePart characters a part. The error says what is
// wrong in words a maintainer can act on. A valid id is safe as a path
// component pair and inside a branch name.
func ValidateModelID(id string) error {
	if id == "" {
		return fmt.Errorf("model id is empty: want org/name, e.g. Qwen/Qwen3-0.6B")
	}
	org, name, ok := strings.Cut(id, "/")
	if !ok {
		return fmt.Errorf("model id %q has no '/': want org/name, e.g. Qwen/Qwen3-0.6B", clip(id))
	}
	if strings.Contains(name, "/") {
		return fmt.Errorf("model id %q has more than one '/': want org/name", clip(id))
	}
	for _, p := range []struct{ what, s string }{{"organization", org}, {"model name", name}} {
		if err := validatePart(p.what, p.s); err != nil {
			return fmt.Errorf("model id %q: %w", clip(id), err)
		}
	}
	return nil
}

func validatePart(what, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%s is empty", what)
	case len(s) > MaxNamePart:
		return fmt.Errorf("%s is %d characters long, at most %d allowed", what, len(s), MaxNamePart)
	case strings.Contains(s, ".."):
		return fmt.Errorf("%s contains \"..\"", what)
	case strings.HasPrefix(s, "-") || strings.HasPrefix(s, "."):
		return fmt.Errorf("%s starts with %q", what, s[:1])
	case strings.HasSuffix(s, "-") || strings.HasSuffix(s, "."):
		return fmt.Errorf("%s ends with %q", what, s[len(s)-1:])
	}
	for i, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("%s has %q at position %d: only letters, digits, '-', '_' and '.' are allowed", what, r, i+1)
		}
	}
	return nil
}

// clip shortens s for an error message so a hostile id cannot flood a reply.
func clip(s string) string {
	const n = 2*MaxNamePart + 1
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
