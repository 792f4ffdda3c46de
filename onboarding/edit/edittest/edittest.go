// Package edittest helps test file edits: a diff that shows exactly which
// lines an edit changed (golden files of it are kept with internal/golden).
package edittest

import (
	"bytes"
	"fmt"
	"strings"
)

// Diff shows the lines that differ between old and new as hunks of -/+
// lines, each headed by its old line number (a longest-common-subsequence
// line diff). It is "" when nothing differs.
func Diff(old, new []byte) string {
	if bytes.Equal(old, new) {
		return ""
	}
	a := strings.SplitAfter(string(old), "\n")
	b := strings.SplitAfter(string(new), "\n")
	// Trim the common prefix and suffix, then LCS the middle.
	p := 0
	for p < len(a) && p < len(b) && a[p] == b[p] {
		p++
	}
	s := 0
	for s < len(a)-p && s < len(b)-p && a[len(a)-1-s] == b[len(b)-1-s] {
		s++
	}
	am, bm := a[p:len(a)-s], b[p:len(b)-s]
	n, m := len(am), len(bm)
	lcs := make([][]int32, n+1)
	for i := range lcs {
		lcs[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if am[i] == bm[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out strings.Builder
	var del, add []string
	hunkAt := -1
	flush := func() {
		if len(del)+len(add) == 0 {
			return
		}
		fmt.Fprintf(&out, "@@ line %d: -%d +%d\n", hunkAt, len(del), len(add))
		for _, l := range del {
			out.WriteString("-" + strings.TrimSuffix(l, "\n") + "\n")
		}
		for _, l := range add {
			out.WriteString("+" + strings.TrimSuffix(l, "\n") + "\n")
		}
		del, add = nil, nil
	}
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && am[i] == bm[j]:
			flush()
			i++
			j++
		case j < m && (i == n || lcs[i][j+1] >= lcs[i+1][j]):
			if len(del)+len(add) == 0 {
				hunkAt = p + i + 1
			}
			add = append(add, bm[j])
			j++
		default:
			if len(del)+len(add) == 0 {
				hunkAt = p + i + 1
			}
			del = append(del, am[i])
			i++
		}
	}
	flush()
	return out.String()
}
