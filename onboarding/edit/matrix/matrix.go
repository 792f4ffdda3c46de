// Package matrix edits TensorRT-LLM's support matrix,
// docs/source/models/supported-models.md: a row in the first table
// (Architecture | Model | HuggingFace Example), placed alphabetically by
// architecture, with the AutoDeploy footnote in whichever of the two styles
// the file uses. Only the new row (and a new footnote line) change.
package matrix

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Path is the support matrix in a TensorRT-LLM checkout.
const Path = "docs/source/models/supported-models.md"

// Style is how a file marks AutoDeploy-only models.
type Style string

const (
	// Shared: one footnote for every AutoDeploy model, linking the configs folder.
	Shared Style = "shared"
	// PerModel: each AutoDeploy model has its own footnote linking its config YAML.
	PerModel Style = "per-model"
)

// Row is a model to list.
type Row struct {
	// Architecture is the class name, e.g. Qwen3ForCausalLM.
	Architecture string
	// Model is the display name, e.g. "Qwen3".
	Model string
	// Example is a HuggingFace model id.
	Example string
	// ADOnly marks a model supported only through AutoDeploy (a footnote).
	ADOnly bool
	// ConfigFile is the model's config YAML name under
	// examples/auto_deploy/model_registry/configs/ (for the per-model footnote).
	ConfigFile string
}

// Result says what AddRow did.
type Result struct {
	// Outcome is "unchanged", "inserted" or "example added".
	Outcome string
	// Footnote is the label used ("5", "16"), "" for none.
	Footnote string
	Style    Style
	// Line is the row's line, 1-based.
	Line int
}

// Table is the first table as read.
type Table struct {
	Header, Sep int // line indices
	Rows        []TableRow
	Widths      []int
	Style       Style
	// ADFootnote is the shared AutoDeploy footnote's label ("" when none).
	ADFootnote string
	// MaxFootnote is the largest numeric footnote label in the file.
	MaxFootnote int
	// defsEnd is the line after the footnote block that holds the AD
	// footnotes (or the first block after the table); -1 when the file has none.
	defsEnd int
	lines   []string
}

// TableRow is one row of the first table.
type TableRow struct {
	Line         int // index
	Architecture string
	Cells        []string
}

var (
	defRE   = regexp.MustCompile(`^\[\^([^\]]+)\]:\s*(.*)$`)
	archRE  = regexp.MustCompile("^`([^`]+)`")
	sepRE   = regexp.MustCompile(`^\|(\s*:?-+:?\s*\|)+\s*$`)
	adDefRE = regexp.MustCompile(`Supported via the \[AutoDeploy\]`)
)

// ErrNoTable means the file has no Architecture | Model | HuggingFace Example table.
var ErrNoTable = errors.New("no supported-models table (Architecture | Model | HuggingFace Example)")

// Parse reads the first table and the footnotes. name is used in errors.
func Parse(name string, data []byte) (*Table, error) {
	lines := strings.SplitAfter(string(data), "\n")
	t := &Table{Header: -1, defsEnd: -1, lines: lines}
	for i := 0; i+1 < len(lines); i++ {
		if strings.HasPrefix(lines[i], "|") && sepRE.MatchString(trimEOL(lines[i+1])) {
			t.Header, t.Sep = i, i+1
			break
		}
	}
	if t.Header < 0 {
		return nil, fmt.Errorf("parse %s: %w", name, ErrNoTable)
	}
	head := cells(lines[t.Header])
	if len(head) < 3 || head[0] != "Architecture" || head[1] != "Model" || !strings.HasPrefix(head[2], "HuggingFace") {
		return nil, fmt.Errorf("parse %s: first table's columns are %q: %w", name, head, ErrNoTable)
	}
	for _, c := range strings.Split(strings.Trim(trimEOL(lines[t.Sep]), "|"), "|") {
		t.Widths = append(t.Widths, len(strings.TrimSpace(c)))
	}
	for i := t.Sep + 1; i < len(lines) && strings.HasPrefix(lines[i], "|"); i++ {
		cs := cells(lines[i])
		m := archRE.FindStringSubmatch(cs[0])
		if m == nil {
			return nil, fmt.Errorf("parse %s: line %d: first cell %q has no `Architecture`", name, i+1, cs[0])
		}
		t.Rows = append(t.Rows, TableRow{Line: i, Architecture: m[1], Cells: cs})
	}
	tableEnd := t.Sep + 1 + len(t.Rows)
	// Footnote definitions.
	type block struct{ start, end int }
	var blocks []block
	adBlock := -1
	for i := 0; i < len(lines); i++ {
		m := defRE.FindStringSubmatch(trimEOL(lines[i]))
		if m == nil {
			continue
		}
		if n, err := strconv.Atoi(m[1]); err == nil && n > t.MaxFootnote {
			t.MaxFootnote = n
		}
		if len(blocks) == 0 || blocks[len(blocks)-1].end != i {
			blocks = append(blocks, block{i, i + 1})
		} else {
			blocks[len(blocks)-1].end = i + 1
		}
		if adDefRE.MatchString(m[2]) {
			if adBlock < 0 {
				adBlock = len(blocks) - 1
			}
			if !strings.Contains(m[2], ".yaml)") && t.ADFootnote == "" {
				t.ADFootnote = m[1]
			}
		}
	}
	switch {
	case t.ADFootnote != "":
		t.Style = Shared
	default:
		t.Style = PerModel
	}
	switch {
	case adBlock >= 0:
		t.defsEnd = blocks[adBlock].end
	default:
		for _, b := range blocks {
			if b.start >= tableEnd {
				t.defsEnd = b.end
				break
			}
		}
	}
	return t, nil
}

// Find returns the row for an architecture, or nil.
func (t *Table) Find(arch string) *TableRow {
	for i := range t.Rows {
		if t.Rows[i].Architecture == arch {
			return &t.Rows[i]
		}
	}
	return nil
}

func cells(line string) []string {
	s := strings.TrimSpace(trimEOL(line))
	s = strings.TrimPrefix(s, "|")
	s = strings.TrimSuffix(s, "|")
	parts := strings.Split(s, "|")
	for i, p := range parts {
		parts[i] = strings.TrimSpace(p)
	}
	return parts
}

func trimEOL(s string) string { return strings.TrimRight(s, "\r\n") }

var archNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// AddRow adds r to the first table (or its example to an existing row). Idempotent.
func AddRow(name string, old []byte, r Row) ([]byte, Result, error) {
	if !archNameRE.MatchString(r.Architecture) {
		return nil, Result{}, fmt.Errorf("support matrix row: %q is not a class name", r.Architecture)
	}
	if r.Model == "" || r.Example == "" || strings.ContainsAny(r.Model+r.Example, "|\n`") {
		return nil, Result{}, fmt.Errorf("support matrix row for %s: model %q and example %q must be set, without | or backticks", r.Architecture, r.Model, r.Example)
	}
	t, err := Parse(name, old)
	if err != nil {
		return nil, Result{}, err
	}
	lines := slices.Clone(t.lines)
	res := Result{Style: t.Style}
	ex := "`" + r.Example + "`"
	if row := t.Find(r.Architecture); row != nil {
		res.Line = row.Line + 1
		if fm := regexp.MustCompile(`\[\^([^\]]+)\]`).FindStringSubmatch(row.Cells[0]); fm != nil {
			res.Footnote = fm[1]
		}
		if len(row.Cells) >= 3 && strings.Contains(row.Cells[2], ex) {
			res.Outcome = "unchanged"
			return old, res, nil
		}
		cs := slices.Clone(row.Cells)
		cs[2] = cs[2] + ", " + ex
		lines[row.Line] = renderRow(cs, t.Widths) + eol(lines[row.Line])
		res.Outcome = "example added"
		out := []byte(strings.Join(lines, ""))
		return out, res, check(name, t, out, r)
	}
	arch := "`" + r.Architecture + "`"
	var def string
	if r.ADOnly {
		switch t.Style {
		case Shared:
			res.Footnote = t.ADFootnote
		default:
			if r.ConfigFile == "" {
				return nil, Result{}, fmt.Errorf("support matrix row for %s: the file gives each AutoDeploy model its own footnote, which needs the config YAML's name", r.Architecture)
			}
			res.Footnote = strconv.Itoa(t.MaxFootnote + 1)
			def = fmt.Sprintf("[^%s]: Supported via the [AutoDeploy](../features/auto_deploy/auto-deploy.md) backend. See [AD config](../../../examples/auto_deploy/model_registry/configs/%s).", res.Footnote, r.ConfigFile)
		}
		arch += " [^" + res.Footnote + "]"
	}
	at := t.Sep + 1 + len(t.Rows)
	for _, row := range t.Rows {
		if row.Architecture > r.Architecture {
			at = row.Line
			break
		}
	}
	e := eol(lines[t.Header])
	cs := []string{arch, r.Model, ex}
	for len(cs) < len(t.Widths) {
		cs = append(cs, "")
	}
	rowLine := renderRow(cs, t.Widths) + e
	if def != "" {
		if t.defsEnd >= 0 {
			lines = slices.Insert(lines, t.defsEnd, def+e)
		} else {
			// No footnotes yet: a block after the table.
			end := t.Sep + 1 + len(t.Rows)
			lines = slices.Insert(lines, end, e, def+e)
		}
	}
	lines = slices.Insert(lines, at, rowLine)
	res.Outcome = "inserted"
	res.Line = at + 1
	out := []byte(strings.Join(lines, ""))
	return out, res, check(name, t, out, r)
}

func renderRow(cs []string, widths []int) string {
	var b strings.Builder
	b.WriteString("|")
	for i, c := range cs {
		w := 0
		if i < len(widths) {
			w = widths[i]
		}
		b.WriteString(" " + c)
		if pad := w - len([]rune(c)); pad > 0 {
			b.WriteString(strings.Repeat(" ", pad))
		}
		b.WriteString(" |")
	}
	return b.String()
}

func eol(l string) string {
	if strings.HasSuffix(l, "\r\n") {
		return "\r\n"
	}
	return "\n"
}

// check re-reads the result: the row is there, the other rows are as they
// were, and a footnote the row cites is defined.
func check(name string, before *Table, out []byte, r Row) error {
	t, err := Parse(name, out)
	if err != nil {
		return fmt.Errorf("support matrix edit would break %s: %w", name, err)
	}
	row := t.Find(r.Architecture)
	if row == nil || !strings.Contains(row.Cells[2], "`"+r.Example+"`") {
		return fmt.Errorf("support matrix edit: row for %s does not read back", r.Architecture)
	}
	var a, b []string
	for _, x := range before.Rows {
		if x.Architecture != r.Architecture {
			a = append(a, strings.Join(x.Cells, "|"))
		}
	}
	for _, x := range t.Rows {
		if x.Architecture != r.Architecture {
			b = append(b, strings.Join(x.Cells, "|"))
		}
	}
	if !slices.Equal(a, b) {
		return fmt.Errorf("support matrix edit for %s would change other rows", r.Architecture)
	}
	if fm := regexp.MustCompile(`\[\^([^\]]+)\]`).FindStringSubmatch(row.Cells[0]); fm != nil {
		if !strings.Contains(string(out), "\n[^"+fm[1]+"]:") {
			return fmt.Errorf("support matrix edit: footnote [^%s] is not defined", fm[1])
		}
	}
	return nil
}
