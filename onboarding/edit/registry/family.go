package registry

import (
	"regexp"
	"strings"
)

// sizeRE matches a name segment that gives a size: 8B, 0.6B, 135M, 8x7B,
// 30B (A3B, E2B and the like are sizes too).
var sizeRE = regexp.MustCompile(`(?i)^(\d+x)?\d+(\.\d+)?[bmkt]$|^[ae]\d+(\.\d+)?b$`)

// FamilyStem is the family part of a model id's name: the name up to its
// first size segment ("Qwen3-30B-A3B" -> "Qwen3", "Llama-3.1-8B-Instruct"
// -> "Llama-3.1", "Mixtral-8x7B-v0.1" -> "Mixtral", "gpt-oss-20b" ->
// "gpt-oss"); a name without a size segment is its own stem ("DeepSeek-V3").
func FamilyStem(id string) string {
	name := id
	if i := strings.LastIndex(id, "/"); i >= 0 {
		name = id[i+1:]
	}
	segs := strings.Split(name, "-")
	for i, s := range segs {
		if i > 0 && sizeRE.MatchString(s) {
			return strings.Join(segs[:i], "-")
		}
	}
	return name
}

// SameFamily reports whether other belongs to the family of id: its name
// starts with id's stem followed by '-' or nothing (any organization).
// The relation is symmetric: GLM-5-Air (no size, its own stem) and GLM-5
// are one family because "GLM-5-Air" starts with "GLM-5-".
func SameFamily(id, other string) bool {
	a, b := strings.ToLower(baseName(id)), strings.ToLower(baseName(other))
	sa, sb := strings.ToLower(FamilyStem(id)), strings.ToLower(FamilyStem(other))
	return sa == sb || b == sa || strings.HasPrefix(b, sa+"-") || a == sb || strings.HasPrefix(a, sb+"-")
}

func baseName(id string) string {
	if i := strings.LastIndex(id, "/"); i >= 0 {
		return id[i+1:]
	}
	return id
}

// closest picks the family entry a new entry for id goes after: among the
// active members (all members when none is active), the one whose name
// shares the longest prefix with id's, the later one on a tie.
func closest(id string, fam []*Entry) *Entry {
	var cands []*Entry
	for _, e := range fam {
		if e.Active {
			cands = append(cands, e)
		}
	}
	if len(cands) == 0 {
		cands = fam
	}
	var best *Entry
	bestN := -1
	name := strings.ToLower(baseName(id))
	for _, e := range cands {
		other := strings.ToLower(baseName(e.Name))
		n := 0
		for n < len(name) && n < len(other) && name[n] == other[n] {
			n++
		}
		if n >= bestN {
			best, bestN = e, n
		}
	}
	return best
}

// Family lists the registry's entries (active or not) in id's family.
func (r *Registry) Family(id string) []*Entry {
	var out []*Entry
	for _, e := range r.Entries {
		if SameFamily(id, e.Name) {
			out = append(out, e)
		}
	}
	return out
}
