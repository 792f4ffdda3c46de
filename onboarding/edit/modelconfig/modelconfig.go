// Package modelconfig writes and edits a model's standalone AutoDeploy
// config YAML (examples/auto_deploy/model_registry/configs/<model>.yaml), the
// file that build_and_run_ad.py --args.yaml-extra and trtllm-serve
// --extra_llm_api_options both read. Edits are made as text: only the lines
// of the keys set change, comments and the rest stay.
package modelconfig

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// World-size keys a checkout may use (FACTS: world_size_N.yaml sets one of them).
const (
	KeyWorldSize = "world_size"
	KeyTP        = "tensor_parallel_size"
)

// WorldSizeKey is the key a checkout's world_size_N.yaml files use: pass the
// bytes of any of them (nil: KeyWorldSize).
func WorldSizeKey(worldSizeFile []byte) string {
	var m map[string]any
	if yaml.Unmarshal(worldSizeFile, &m) == nil {
		if _, ok := m[KeyTP]; ok {
			return KeyTP
		}
	}
	return KeyWorldSize
}

// Options describe a new model config.
type Options struct {
	ModelID string
	// Display names the model in the header comment ("Qwen3 8B").
	Display string
	// Base is the checkout's dashboard_default.yaml, copied in (without its
	// header comment) so that the file is self-contained; nil for none.
	Base []byte
	// WorldSize and WorldKey (KeyWorldSize or KeyTP) set the GPU count.
	WorldSize int
	WorldKey  string
	// RemoteCode sets trust_remote_code: true.
	RemoteCode bool
	// Layers, when positive, reduces the model to that many layers
	// (model_kwargs.num_hidden_layers) for a first, quick run.
	Layers int
}

// Render writes a new config from o.
func Render(o Options) ([]byte, error) {
	if o.WorldSize <= 0 {
		return nil, fmt.Errorf("model config for %s: world size %d", o.ModelID, o.WorldSize)
	}
	// Both go into the header comment: a line break would end the comment
	// and make the rest of the value YAML.
	if strings.ContainsAny(o.ModelID+o.Display, "\r\n") {
		return nil, fmt.Errorf("model config for %q: model id and display name %q must be on one line", o.ModelID, o.Display)
	}
	var b bytes.Buffer
	name := o.Display
	if name == "" {
		name = o.ModelID
	}
	fmt.Fprintf(&b, "# Configuration for %s (%s)\n", name, o.ModelID)
	b.WriteString("# Standalone: read by build_and_run_ad.py --args.yaml-extra and trtllm-serve --extra_llm_api_options.\n")
	body := stripHeader(o.Base)
	b.Write(body)
	if len(body) > 0 && !bytes.HasSuffix(body, []byte("\n")) {
		b.WriteByte('\n')
	}
	out := b.Bytes()
	key := o.WorldKey
	if key == "" {
		key = KeyWorldSize
	}
	var err error
	if out, _, err = SetScalar(out, key, strconv.Itoa(o.WorldSize)); err != nil {
		return nil, err
	}
	if o.RemoteCode {
		if out, _, err = SetScalar(out, "trust_remote_code", "true"); err != nil {
			return nil, err
		}
	}
	if out, _, err = SetLayers(out, o.Layers); err != nil {
		return nil, err
	}
	return out, nil
}

func stripHeader(b []byte) []byte {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		line := b
		if i >= 0 {
			line = b[:i]
		}
		t := bytes.TrimSpace(line)
		if len(t) > 0 && t[0] != '#' {
			break
		}
		if i < 0 {
			return nil
		}
		b = b[i+1:]
	}
	return b
}

var keyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)

// SetScalar sets a top-level scalar key: its line is replaced in place, or
// the key is appended at the end. Idempotent. A key whose present value is a
// block (a map or list on the following lines) is an error.
func SetScalar(old []byte, key, value string) ([]byte, bool, error) {
	if !keyRE.MatchString(key) {
		return nil, false, fmt.Errorf("set %q: not a plain key", key)
	}
	if err := flat(old); err != nil {
		return nil, false, err
	}
	lines := splitLines(old)
	for i, l := range lines {
		k, v, ok := topKey(l)
		if !ok || k != key {
			continue
		}
		if strings.TrimSpace(stripComment(v)) == "" {
			return nil, false, fmt.Errorf("set %s: it holds a block, not a value", key)
		}
		if strings.TrimSpace(stripComment(v)) == value {
			return old, false, nil
		}
		comment := ""
		if j := commentAt(v); j >= 0 {
			comment = " " + strings.TrimRight(v[j:], "\r\n")
		}
		lines[i] = key + ": " + value + comment + eolOf(l)
		return verify(strings.Join(lines, ""), key, value)
	}
	out := string(old)
	if out != "" && !strings.HasSuffix(out, "\n") {
		out += "\n"
	}
	out += key + ": " + value + "\n"
	return verify(out, key, value)
}

// SetLayers sets model_kwargs.num_hidden_layers to n, or removes it when n
// is 0 (and model_kwargs with it when nothing else is left there). Idempotent.
func SetLayers(old []byte, n int) ([]byte, bool, error) {
	const parent, key = "model_kwargs", "num_hidden_layers"
	if err := flat(old); err != nil {
		return nil, false, err
	}
	lines := splitLines(old)
	pi := -1
	for i, l := range lines {
		if k, v, ok := topKey(l); ok && k == parent {
			if strings.TrimSpace(stripComment(v)) != "" {
				return nil, false, fmt.Errorf("set %s.%s: %s is written inline; edit it by hand", parent, key, parent)
			}
			pi = i
		}
	}
	if pi < 0 {
		if n == 0 {
			return old, false, nil
		}
		out := string(old)
		if out != "" && !strings.HasSuffix(out, "\n") {
			out += "\n"
		}
		out += fmt.Sprintf("%s:\n  %s: %d\n", parent, key, n)
		return verifyLayers(out, n)
	}
	// The block: following lines indented more than the parent (or blank).
	end := pi + 1
	indent := "  "
	ki := -1
	children := 0
	for end < len(lines) {
		l := lines[end]
		t := strings.TrimSpace(l)
		if t == "" || (len(l) > 0 && (l[0] == ' ' || l[0] == '\t')) {
			if t != "" && !strings.HasPrefix(t, "#") {
				children++
				if children == 1 {
					indent = l[:len(l)-len(strings.TrimLeft(l, " \t"))]
				}
				if k, _, ok := strings.Cut(t, ":"); ok && k == key && l[:len(l)-len(strings.TrimLeft(l, " \t"))] == indent {
					ki = end
				}
			}
			end++
			continue
		}
		break
	}
	for end > pi+1 && strings.TrimSpace(lines[end-1]) == "" {
		end--
	}
	want := fmt.Sprintf("%s%s: %d", indent, key, n)
	switch {
	case n == 0 && ki < 0:
		return old, false, nil
	case n == 0 && children == 1:
		lines = append(lines[:pi], lines[end:]...)
	case n == 0:
		lines = append(lines[:ki], lines[ki+1:]...)
	case ki >= 0:
		if strings.TrimRight(stripComment(strings.TrimRight(lines[ki], "\r\n")), " ") == want {
			return old, false, nil
		}
		lines[ki] = want + eolOf(lines[ki])
	default:
		lines = append(lines[:pi+1], append([]string{want + "\n"}, lines[pi+1:]...)...)
	}
	return verifyLayers(strings.Join(lines, ""), n)
}

func verify(out, key, value string) ([]byte, bool, error) {
	var m map[string]any
	if err := yaml.Unmarshal([]byte(out), &m); err != nil {
		return nil, false, fmt.Errorf("set %s: the result is not YAML: %w", key, err)
	}
	var want any
	if err := yaml.Unmarshal([]byte(value), &want); err != nil {
		return nil, false, fmt.Errorf("set %s: value %q is not YAML: %w", key, value, err)
	}
	if fmt.Sprint(m[key]) != fmt.Sprint(want) {
		return nil, false, fmt.Errorf("set %s: reads back as %v, want %v", key, m[key], want)
	}
	return []byte(out), true, nil
}

func verifyLayers(out string, n int) ([]byte, bool, error) {
	var m struct {
		MK map[string]any `yaml:"model_kwargs"`
	}
	if err := yaml.Unmarshal([]byte(out), &m); err != nil {
		return nil, false, fmt.Errorf("set model_kwargs.num_hidden_layers: the result is not YAML: %w", err)
	}
	got, _ := m.MK["num_hidden_layers"].(int)
	if got != n {
		return nil, false, fmt.Errorf("set model_kwargs.num_hidden_layers: reads back as %v, want %d", m.MK["num_hidden_layers"], n)
	}
	return []byte(out), true, nil
}

// Layers reads model_kwargs.num_hidden_layers (0 when absent) and the
// world size (world_size or tensor_parallel_size; 0 when absent) of a config.
func Read(name string, b []byte) (layers, worldSize int, err error) {
	var m struct {
		MK map[string]any `yaml:"model_kwargs"`
		WS int            `yaml:"world_size"`
		TP int            `yaml:"tensor_parallel_size"`
	}
	if err := yaml.Unmarshal(b, &m); err != nil {
		return 0, 0, fmt.Errorf("parse model config %s: %w", name, err)
	}
	layers, _ = m.MK["num_hidden_layers"].(int)
	ws := m.WS
	if ws == 0 {
		ws = m.TP
	}
	return layers, ws, nil
}

// topKey splits a top-level "key: value" line.
func topKey(l string) (key, value string, ok bool) {
	if l == "" || l[0] == ' ' || l[0] == '\t' || l[0] == '#' || l[0] == '-' {
		return "", "", false
	}
	k, v, ok := strings.Cut(l, ":")
	if !ok || !keyRE.MatchString(k) {
		return "", "", false
	}
	if v != "" && v[0] != ' ' && v[0] != '\t' && v[0] != '\n' && v[0] != '\r' {
		return "", "", false
	}
	return k, v, true
}

// commentAt is the index of a " #" comment in a plain (unquoted) value, or -1.
func commentAt(v string) int {
	if strings.ContainsAny(v, `'"`) {
		return -1
	}
	if i := strings.Index(v, " #"); i >= 0 {
		return i + 1
	}
	if strings.HasPrefix(strings.TrimLeft(v, " \t"), "#") {
		return strings.Index(v, "#")
	}
	return -1
}

func stripComment(v string) string {
	v = strings.TrimRight(v, "\r\n")
	if i := commentAt(v); i >= 0 {
		v = v[:i]
	}
	return v
}

func eolOf(l string) string {
	switch {
	case strings.HasSuffix(l, "\r\n"):
		return "\r\n"
	case strings.HasSuffix(l, "\n"):
		return "\n"
	}
	return ""
}

func splitLines(b []byte) []string {
	return strings.SplitAfter(string(b), "\n")
}

// flat refuses the old nested ExperimentConfig style (model:, args:, ...),
// where LlmArgs keys sit under args: rather than at the top.
func flat(b []byte) error {
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("parse model config: %w", err)
	}
	if _, ok := m["args"].(map[string]any); ok {
		return fmt.Errorf("model config uses the nested model:/args: layout; its keys belong under args: (edit by hand)")
	}
	return nil
}
