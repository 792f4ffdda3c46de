package sandbox

import (
	"fmt"
	"strings"
)

// DefaultAllowedTools are the coding agent's tools (Claude Code's
// --allowedTools) when the configuration names none: reading and editing
// files, a shell, subagents and skills (the onboarding workflow uses them
// all). The shell is confined by the sandbox, not by this list.
var DefaultAllowedTools = []string{
	"Read", "Glob", "Grep", "Edit", "Write", "NotebookEdit", "Bash",
	"Task", "TaskOutput", "TodoWrite", "Skill", "KillShell",
}

// DefaultDisallowedTools are refused (--disallowedTools) when the
// configuration names none: the web tools, and shell commands that publish,
// reach other hosts or change the repository's remotes. Prefix rules are a
// first line only ("env curl ..." is not "curl ..."); the sandbox's network
// policy is what holds.
var DefaultDisallowedTools = []string{
	"WebFetch", "WebSearch",
	"Bash(git push:*)", "Bash(git remote:*)", "Bash(git config:*)", "Bash(git credential:*)",
	"Bash(gh:*)", "Bash(curl:*)", "Bash(wget:*)", "Bash(ssh:*)", "Bash(scp:*)", "Bash(sudo:*)",
}

// ParseToolList reads a comma-separated list of tool rules as
// ADBOT_AGENT_ALLOWED_TOOLS and ADBOT_AGENT_DISALLOWED_TOOLS hold them:
// a comma inside parentheses belongs to the rule ("Bash(a,b:*)"). Blank
// entries are skipped; unbalanced parentheses and control characters are
// errors.
func ParseToolList(s string) ([]string, error) {
	var out []string
	depth, start := 0, 0
	add := func(end int) {
		if t := strings.TrimSpace(s[start:end]); t != "" {
			out = append(out, t)
		}
	}
	for i, c := range s {
		switch {
		case c < 0x20 || c == 0x7f:
			return nil, fmt.Errorf("tool list: control character %q at byte %d", c, i)
		case c == '(':
			depth++
		case c == ')':
			if depth == 0 {
				return nil, fmt.Errorf("tool list: unmatched ) at byte %d", i)
			}
			depth--
		case c == ',' && depth == 0:
			add(i)
			start = i + 1
		}
	}
	if depth != 0 {
		return nil, fmt.Errorf("tool list %q: unclosed (", s)
	}
	add(len(s))
	return out, nil
}
