package comments

import (
	"fmt"
	"strconv"
	"strings"
)

// Join returns the log that Split cut into bodies, byte for byte. The bodies
// must be all the parts, in order (as Split returned them, or as read back
// from GitHub with their line endings intact).
func Join(bodies []string) (string, error) {
	if len(bodies) == 0 {
		return "", fmt.Errorf("join comments: no parts")
	}
	var b strings.Builder
	for k, body := range bodies {
		content, i, n, err := parsePart(body)
		if err != nil {
			return "", fmt.Errorf("join comment %d of %d: %w", k+1, len(bodies), err)
		}
		if i != k+1 || n != len(bodies) {
			return "", fmt.Errorf("join comment %d of %d: it says it is part %d/%d", k+1, len(bodies), i, n)
		}
		b.WriteString(content)
	}
	return b.String(), nil
}

// parsePart returns the share of the log one body holds and its part number.
func parsePart(body string) (content string, i, n int, err error) {
	if !strings.HasPrefix(body, Prefix) {
		return "", 0, 0, fmt.Errorf("body does not begin %q", Prefix)
	}
	m := strings.LastIndex(body, marker)
	if m < 0 {
		return "", 0, 0, fmt.Errorf("no part marker %q", marker)
	}
	tail := body[m+len(marker):]
	end := strings.Index(tail, " -->")
	if end < 0 {
		return "", 0, 0, fmt.Errorf("part marker not closed")
	}
	fields := strings.Fields(tail[:end])
	noeol := false
	switch {
	case len(fields) == 2 && fields[1] == flagNoEOL:
		noeol = true
	case len(fields) == 1:
	default:
		return "", 0, 0, fmt.Errorf("part marker %q: want \"i/n\" and an optional %q", tail[:end], flagNoEOL)
	}
	num, den, ok := strings.Cut(fields[0], "/")
	i, err1 := strconv.Atoi(num)
	n, err2 := strconv.Atoi(den)
	if !ok || err1 != nil || err2 != nil || i < 1 || n < i {
		return "", 0, 0, fmt.Errorf("part marker %q: want \"i/n\" with 1 <= i <= n", fields[0])
	}

	// The closing fence holds the last backtick before the marker: nothing
	// after it (note, marker) holds one.
	last := strings.LastIndexByte(body[:m], '`')
	if last < 0 {
		return "", 0, 0, fmt.Errorf("no code fence")
	}
	start := last
	for start > 0 && body[start-1] == '`' {
		start--
	}
	fence := body[start : last+1]
	if len(fence) < 3 || start == 0 || body[start-1] != '\n' || last+1 >= len(body) || body[last+1] != '\n' {
		return "", 0, 0, fmt.Errorf("closing code fence not on a line of its own")
	}
	// The log holds no run of backticks as long as the fence, so the last one
	// before the closing fence is the opening fence.
	open := strings.LastIndex(body[:start], fence)
	if open < 0 {
		return "", 0, 0, fmt.Errorf("no opening code fence %q", fence)
	}
	nl := strings.IndexByte(body[open:start], '\n')
	if nl < 0 {
		return "", 0, 0, fmt.Errorf("opening code fence not on a line of its own")
	}
	content = body[open+nl+1 : start]
	if noeol {
		if !strings.HasSuffix(content, "\n") {
			return "", 0, 0, fmt.Errorf("part marked %q has no added newline", flagNoEOL)
		}
		content = content[:len(content)-1]
	}
	return content, i, n, nil
}
