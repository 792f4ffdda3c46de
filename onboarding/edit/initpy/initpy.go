// Package initpy registers a custom model in AutoDeploy's
// tensorrt_llm/_torch/auto_deploy/models/custom/__init__.py: an import
// line, kept sorted by module, and an entry in __all__. Nothing else in the
// file changes.
package initpy

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// Path is the file in a TensorRT-LLM checkout.
const Path = "tensorrt_llm/_torch/auto_deploy/models/custom/__init__.py"

// MaxLine is the line length (ruff's, as TensorRT-LLM configures it) past
// which an import is written in parentheses, one name a line.
const MaxLine = 100

// File is a parsed __init__.py.
type File struct {
	// Imports maps a module (".modeling_x") to the names it imports.
	Imports map[string][]string
	// All lists __all__ in order.
	All []string

	lines              []string
	imports            []span // each import statement
	allStart, allEnd   int    // __all__ lines [start, end)
	allOpen, allClose  string
	allIndent, allQuot string
	allInline          bool
}

type span struct {
	module     string
	start, end int
}

var (
	importRE = regexp.MustCompile(`^from\s+(\.[A-Za-z0-9_.]*)\s+import\s+(.*)$`)
	allRE    = regexp.MustCompile(`^__all__\s*=\s*([\[(])(.*)$`)
	nameRE   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	quotedRE = regexp.MustCompile(`(["'])([A-Za-z_][A-Za-z0-9_]*)["']`)
)

// ErrNoAll means the file has no __all__ to add to.
var ErrNoAll = errors.New("no __all__ list or tuple")

// Parse reads the relative imports and __all__. name is used in errors.
func Parse(name string, data []byte) (*File, error) {
	f := &File{Imports: map[string][]string{}, lines: strings.SplitAfter(string(data), "\n"), allStart: -1}
	for i := 0; i < len(f.lines); i++ {
		l := strings.TrimRight(f.lines[i], "\r\n")
		if m := importRE.FindStringSubmatch(l); m != nil {
			rest := strings.TrimSpace(m[2])
			end := i + 1
			if strings.HasPrefix(rest, "(") {
				var b strings.Builder
				b.WriteString(rest)
				for !strings.Contains(b.String(), ")") {
					if end >= len(f.lines) {
						return nil, fmt.Errorf("parse %s: line %d: import of %s has no closing parenthesis", name, i+1, m[1])
					}
					b.WriteString(" " + strings.TrimSpace(f.lines[end]))
					end++
				}
				rest = b.String()
			}
			rest = strings.Trim(rest, "() ")
			if k := strings.Index(rest, "#"); k >= 0 {
				rest = rest[:k]
			}
			for _, n := range strings.Split(rest, ",") {
				n = strings.TrimSpace(n)
				if n == "" {
					continue
				}
				if !nameRE.MatchString(n) {
					return nil, fmt.Errorf("parse %s: line %d: %q is not a plain name", name, i+1, n)
				}
				f.Imports[m[1]] = append(f.Imports[m[1]], n)
			}
			f.imports = append(f.imports, span{m[1], i, end})
			i = end - 1
			continue
		}
		if m := allRE.FindStringSubmatch(l); m != nil {
			f.allStart, f.allOpen = i, m[1]
			f.allClose = map[string]string{"[": "]", "(": ")"}[m[1]]
			f.allQuot = `"`
			end := i
			var body strings.Builder
			for {
				body.WriteString(f.lines[end])
				end++
				if strings.Contains(strings.SplitN(body.String(), "=", 2)[1][1:], f.allClose) || end >= len(f.lines) {
					break
				}
			}
			if !strings.Contains(body.String(), f.allClose) {
				return nil, fmt.Errorf("parse %s: line %d: __all__ is not closed", name, i+1)
			}
			f.allEnd = end
			f.allInline = end == i+1
			for _, q := range quotedRE.FindAllStringSubmatch(body.String(), -1) {
				f.All = append(f.All, q[2])
				f.allQuot = q[1]
			}
			if !f.allInline && end-i > 2 {
				first := f.lines[i+1]
				f.allIndent = first[:len(first)-len(strings.TrimLeft(first, " \t"))]
			}
			if f.allIndent == "" {
				f.allIndent = "    "
			}
			i = end - 1
		}
	}
	if f.allStart < 0 {
		return nil, fmt.Errorf("parse %s: %w", name, ErrNoAll)
	}
	return f, nil
}

// Add imports names from module (".modeling_x", or "modeling_x") and lists
// them in __all__. Idempotent: a name already imported and listed changes nothing.
func Add(name string, old []byte, module string, names []string) ([]byte, bool, error) {
	if !strings.HasPrefix(module, ".") {
		module = "." + module
	}
	if !regexp.MustCompile(`^\.[a-z0-9_]+$`).MatchString(module) {
		return nil, false, fmt.Errorf("register in %s: %q is not a module name", name, module)
	}
	if len(names) == 0 {
		return nil, false, fmt.Errorf("register in %s: no names to import from %s", name, module)
	}
	for _, n := range names {
		if !nameRE.MatchString(n) {
			return nil, false, fmt.Errorf("register in %s: %q is not a class name", name, n)
		}
	}
	f, err := Parse(name, old)
	if err != nil {
		return nil, false, err
	}
	lines := slices.Clone(f.lines)
	eol := "\n"
	if len(lines) > 0 && strings.HasSuffix(lines[0], "\r\n") {
		eol = "\r\n"
	}
	changed := false
	// __all__ first (it sits below the imports, so import edits do not shift it).
	var missing []string
	for _, n := range names {
		if !slices.Contains(f.All, n) && !slices.Contains(missing, n) {
			missing = append(missing, n)
		}
	}
	sort.SliceStable(missing, func(i, j int) bool { return strings.ToLower(missing[i]) < strings.ToLower(missing[j]) })
	if len(missing) > 0 {
		changed = true
		all := slices.Clone(f.All)
		for _, n := range missing {
			at := len(all)
			for i, x := range all {
				if strings.ToLower(x) > strings.ToLower(n) {
					at = i
					break
				}
			}
			all = slices.Insert(all, at, n)
		}
		if f.allInline {
			q := make([]string, len(all))
			for i, x := range all {
				q[i] = f.allQuot + x + f.allQuot
			}
			trail := ""
			if f.allOpen == "(" && len(all) == 1 {
				trail = ","
			}
			lines[f.allStart] = "__all__ = " + f.allOpen + strings.Join(q, ", ") + trail + f.allClose + eol
		} else {
			// Insert each new name on its own line, before the first listed
			// name that sorts after it.
			var ins []struct {
				at   int
				line string
			}
			for _, n := range missing {
				at := f.allEnd - 1 // before the closing line
				for i := f.allStart + 1; i < f.allEnd-1; i++ {
					if q := quotedRE.FindStringSubmatch(lines[i]); q != nil && strings.ToLower(q[2]) > strings.ToLower(n) {
						at = i
						break
					}
				}
				ins = append(ins, struct {
					at   int
					line string
				}{at, f.allIndent + f.allQuot + n + f.allQuot + "," + eol})
			}
			// Bottom-up, and names that share a slot go in reverse so they end up in order.
			slices.Reverse(ins)
			sort.SliceStable(ins, func(i, j int) bool { return ins[i].at > ins[j].at })
			for _, x := range ins {
				lines = slices.Insert(lines, x.at, x.line)
			}
		}
	}
	// The import.
	have := f.Imports[module]
	var add []string
	for _, n := range names {
		if !slices.Contains(have, n) && !slices.Contains(add, n) {
			add = append(add, n)
		}
	}
	if len(add) > 0 {
		changed = true
		all := append(slices.Clone(have), add...)
		sort.Strings(all)
		stmt := renderImport(module, all, eol)
		var sp *span
		for i := range f.imports {
			if f.imports[i].module == module {
				sp = &f.imports[i]
			}
		}
		if sp != nil {
			lines = slices.Concat(lines[:sp.start], []string{stmt}, lines[sp.end:])
		} else {
			at := -1
			for _, s := range f.imports {
				if s.module > module {
					at = s.start
					break
				}
			}
			if at < 0 {
				if len(f.imports) > 0 {
					at = f.imports[len(f.imports)-1].end
				} else {
					at = 0
				}
			}
			lines = slices.Insert(lines, at, stmt)
		}
	}
	if !changed {
		return old, false, nil
	}
	out := []byte(strings.Join(lines, ""))
	nf, err := Parse(name, out)
	if err != nil {
		return nil, false, fmt.Errorf("register %s in %s would break it: %w", module, name, err)
	}
	for _, n := range names {
		if !slices.Contains(nf.Imports[module], n) || !slices.Contains(nf.All, n) {
			return nil, false, fmt.Errorf("register %s in %s: %s does not read back", module, name, n)
		}
	}
	return out, true, nil
}

func renderImport(module string, names []string, eol string) string {
	one := "from " + module + " import " + strings.Join(names, ", ")
	if len(one) <= MaxLine {
		return one + eol
	}
	var b strings.Builder
	b.WriteString("from " + module + " import (" + eol)
	for _, n := range names {
		b.WriteString("    " + n + "," + eol)
	}
	b.WriteString(")" + eol)
	return b.String()
}
