// Package registry reads and edits AutoDeploy's model registry
// (models.yaml) as text, so that comments, quoting and order survive; yaml.v3
// only checks the result. Both generations that exist upstream are handled:
// examples/auto_deploy/model_registry/models.yaml with yaml_extra lists
// (Legacy), and tensorrt_llm/_torch/auto_deploy/config/model_registry_internal/models.yaml
// with world_size, ad_defaults and user_configs (Internal).
package registry

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Paths of the two registry generations in a TensorRT-LLM checkout.
const (
	LegacyPath     = "examples/auto_deploy/model_registry/models.yaml"
	LegacyConfigs  = "examples/auto_deploy/model_registry/configs"
	InternalPath   = "tensorrt_llm/_torch/auto_deploy/config/model_registry_internal/models.yaml"
	InternalConfig = "tensorrt_llm/_torch/auto_deploy/config/model_registry_internal/configs"
)

// Layout is a registry generation.
type Layout int

const (
	// Legacy entries list yaml_extra: [dashboard_default.yaml, world_size_N.yaml, ...].
	Legacy Layout = iota + 1
	// Internal entries carry world_size, ad_defaults and user_configs.
	Internal
)

func (l Layout) String() string {
	switch l {
	case Legacy:
		return "yaml_extra"
	case Internal:
		return "ad_defaults/user_configs"
	}
	return "unknown"
}

// Entry is one model entry, active or commented out.
type Entry struct {
	Name     string `json:"name"`
	ConfigID string `json:"config_id,omitempty"`
	// YAMLExtra is the Legacy config list.
	YAMLExtra []string `json:"yaml_extra,omitempty"`
	// ADDefaults and UserConfigs are the Internal config lists.
	ADDefaults  []string `json:"ad_defaults,omitempty"`
	UserConfigs []string `json:"user_configs,omitempty"`
	// WorldSizeKey is the world_size: field (Internal), 0 when absent.
	WorldSizeKey int `json:"world_size,omitempty"`
	// Active is false for an entry kept commented out.
	Active bool `json:"active"`
	// Reason is the comment line above a commented-out entry (its failure).
	Reason string `json:"reason,omitempty"`
	// Section is the family header the entry falls under ("# --- X ---").
	Section string `json:"section,omitempty"`
	// Line is the entry's first line, 1-based.
	Line int `json:"line"`

	start, end  int // lines [start, end)
	reasonStart int // first reason line, or start
}

// Configs is the entry's config file list (yaml_extra, or user_configs).
func (e *Entry) Configs() []string {
	if e.YAMLExtra != nil {
		return e.YAMLExtra
	}
	return e.UserConfigs
}

// WorldSize is the GPU count the entry names: the world_size key, or a
// world_size_N.yaml in its config list; 0 when neither says (a model config
// may still set world_size or tensor_parallel_size itself).
func (e *Entry) WorldSize() int {
	if e.WorldSizeKey > 0 {
		return e.WorldSizeKey
	}
	for _, c := range e.Configs() {
		if m := wsFileRE.FindStringSubmatch(c); m != nil {
			n, _ := strconv.Atoi(m[1])
			return n
		}
	}
	return 0
}

var wsFileRE = regexp.MustCompile(`^world_size_(\d+)\.yaml$`)

// Registry is a parsed models.yaml.
type Registry struct {
	Name    string
	Layout  Layout
	Entries []*Entry
	lines   []string // with their line endings
}

// Find returns the entries named name (active first).
func (r *Registry) Find(name string) []*Entry {
	var act, off []*Entry
	for _, e := range r.Entries {
		if strings.EqualFold(e.Name, name) {
			if e.Active {
				act = append(act, e)
			} else {
				off = append(off, e)
			}
		}
	}
	return append(act, off...)
}

var (
	activeRE    = regexp.MustCompile(`^(\s*)- name:\s*(\S.*?)\s*$`)
	commentRE   = regexp.MustCompile(`^#(\s*)- name:\s*(\S.*?)\s*$`)
	sectionRE   = regexp.MustCompile(`^#\s*---\s*(.*?)\s*---\s*$`)
	bannerRE    = regexp.MustCompile(`^#\s*={5,}\s*$`)
	keyLineRE   = regexp.MustCompile(`^\s+\S`)
	commentCont = regexp.MustCompile(`^#\s{2,}\S`)
)

// ErrNotRegistry means the file is YAML but not a model registry.
var ErrNotRegistry = errors.New("not an AutoDeploy model registry")

// Parse reads a models.yaml. name is used in errors.
func Parse(name string, data []byte) (*Registry, error) {
	var doc struct {
		Models []map[string]any `yaml:"models"`
	}
	var top map[string]any
	if err := yaml.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("parse registry %s: %w", name, err)
	}
	if _, ok := top["models"]; !ok {
		return nil, fmt.Errorf("parse registry %s: no top-level \"models\" key: %w", name, ErrNotRegistry)
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse registry %s: \"models\" is not a list of entries: %w", name, err)
	}
	r := &Registry{Name: name, lines: splitLines(data)}
	section := ""
	var pendingReason []int
	for i := 0; i < len(r.lines); i++ {
		line := strings.TrimRight(r.lines[i], "\r\n")
		if m := sectionRE.FindStringSubmatch(line); m != nil {
			section = m[1]
			pendingReason = nil
			continue
		}
		if bannerRE.MatchString(line) {
			section = ""
			pendingReason = nil
			continue
		}
		if m := activeRE.FindStringSubmatch(line); m != nil {
			e := &Entry{Name: unquote(m[2]), Active: true, Section: section, start: i, Line: i + 1, reasonStart: i}
			j := i + 1
			for j < len(r.lines) && keyLineRE.MatchString(strings.TrimRight(r.lines[j], "\r\n")) && len(indentOf(r.lines[j])) > len(m[1]) {
				j++
			}
			e.end = j
			r.Entries = append(r.Entries, e)
			pendingReason = nil
			i = j - 1
			continue
		}
		if m := commentRE.FindStringSubmatch(line); m != nil {
			e := &Entry{Name: unquote(m[2]), Section: section, start: i, Line: i + 1, reasonStart: i}
			j := i + 1
			for j < len(r.lines) && commentCont.MatchString(strings.TrimRight(r.lines[j], "\r\n")) {
				j++
			}
			e.end = j
			if len(pendingReason) > 0 {
				e.reasonStart = pendingReason[0]
				var rs []string
				for _, k := range pendingReason {
					rs = append(rs, strings.TrimSpace(strings.TrimPrefix(strings.TrimRight(r.lines[k], "\r\n"), "#")))
				}
				e.Reason = strings.Join(rs, " ")
			}
			if err := e.decodeCommented(r.lines[i:j]); err != nil {
				return nil, fmt.Errorf("parse registry %s: commented-out entry %s at line %d: %w", name, e.Name, i+1, err)
			}
			r.Entries = append(r.Entries, e)
			pendingReason = nil
			i = j - 1
			continue
		}
		if strings.HasPrefix(line, "#") {
			pendingReason = append(pendingReason, i)
			continue
		}
		pendingReason = nil
	}
	// The active entries read as text must be the ones YAML sees, in order.
	var active []*Entry
	for _, e := range r.Entries {
		if e.Active {
			active = append(active, e)
		}
	}
	if len(active) != len(doc.Models) {
		return nil, fmt.Errorf("parse registry %s: read %d entries as text but YAML has %d", name, len(active), len(doc.Models))
	}
	for i, m := range doc.Models {
		e := active[i]
		if err := e.fill(m); err != nil {
			return nil, fmt.Errorf("parse registry %s: entry at line %d: %w", name, e.Line, err)
		}
		if r.Layout == 0 {
			r.Layout = e.layout()
		}
	}
	if r.Layout == 0 {
		for _, e := range r.Entries {
			if l := e.layout(); l != 0 {
				r.Layout = l
				break
			}
		}
	}
	if r.Layout == 0 {
		if bytes.Contains(data, []byte("ad_defaults")) {
			r.Layout = Internal
		} else {
			r.Layout = Legacy
		}
	}
	return r, nil
}

func (e *Entry) layout() Layout {
	switch {
	case e.YAMLExtra != nil:
		return Legacy
	case e.ADDefaults != nil || e.UserConfigs != nil:
		return Internal
	}
	return 0
}

// fill takes an entry's fields from its YAML decoding.
func (e *Entry) fill(m map[string]any) error {
	n, _ := m["name"].(string)
	if n == "" {
		return errors.New("no name")
	}
	if n != e.Name {
		return fmt.Errorf("name %q read as text, %q as YAML", e.Name, n)
	}
	if v, ok := m["config_id"]; ok {
		e.ConfigID = fmt.Sprint(v)
	}
	var err error
	if e.YAMLExtra, err = strList(m, "yaml_extra"); err != nil {
		return err
	}
	if e.ADDefaults, err = strList(m, "ad_defaults"); err != nil {
		return err
	}
	if e.UserConfigs, err = strList(m, "user_configs"); err != nil {
		return err
	}
	if v, ok := m["world_size"]; ok {
		ws, ok := v.(int)
		if !ok || ws <= 0 {
			return fmt.Errorf("%s: world_size %v is not a positive integer", e.Name, v)
		}
		e.WorldSizeKey = ws
	}
	if e.YAMLExtra == nil && e.ADDefaults == nil && e.UserConfigs == nil {
		return fmt.Errorf("%s: no yaml_extra, ad_defaults or user_configs", e.Name)
	}
	return nil
}

func strList(m map[string]any, key string) ([]string, error) {
	v, ok := m[key]
	if !ok || v == nil {
		return nil, nil
	}
	l, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s is not a list", key)
	}
	out := make([]string, 0, len(l))
	for _, x := range l {
		s, ok := x.(string)
		if !ok {
			return nil, fmt.Errorf("%s holds %v, not a file name", key, x)
		}
		out = append(out, s)
	}
	return out, nil
}

// decodeCommented reads a commented-out entry's fields by uncommenting it.
func (e *Entry) decodeCommented(lines []string) error {
	var b strings.Builder
	for _, l := range lines {
		l = strings.TrimRight(l, "\r\n")
		l = strings.TrimPrefix(l, "#")
		l = strings.TrimPrefix(l, " ")
		b.WriteString(l)
		b.WriteByte('\n')
	}
	var list []map[string]any
	if err := yaml.Unmarshal([]byte(b.String()), &list); err != nil || len(list) != 1 {
		// A commented-out entry that does not parse is kept as a name only.
		return nil
	}
	m := list[0]
	if n, _ := m["name"].(string); n != e.Name {
		return nil
	}
	if err := e.fill(m); err != nil {
		return nil
	}
	return nil
}

func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '\'' && s[len(s)-1] == '\'' || s[0] == '"' && s[len(s)-1] == '"') {
		return s[1 : len(s)-1]
	}
	return s
}

func indentOf(s string) string {
	return s[:len(s)-len(strings.TrimLeft(s, " \t"))]
}

// splitLines splits after each '\n', keeping it; a last line without one is kept too.
func splitLines(b []byte) []string {
	var out []string
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			out = append(out, string(b))
			break
		}
		out = append(out, string(b[:i+1]))
		b = b[i+1:]
	}
	return out
}
