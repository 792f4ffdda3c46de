// Package cookbook writes a model's AutoDeploy cookbook notebook from the
// GLM-4.7-Flash template (examples/auto_deploy/cookbooks/glm_4.7_flash_trtllm_cookbook.ipynb):
// the same cells, every model-specific one adapted, no outputs, valid
// nbformat-4 JSON.
package cookbook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strings"

	"github.com/nvidia/adbot/onboarding/internal/numfmt"
)

// Paths in a TensorRT-LLM checkout.
const (
	Dir      = "examples/auto_deploy/cookbooks"
	Template = Dir + "/glm_4.7_flash_trtllm_cookbook.ipynb"
)

// FileName is the notebook's snake_case file name for a model id:
// "zai-org/GLM-4.7-Flash" -> "glm_4.7_flash_trtllm_cookbook.ipynb".
func FileName(modelID string) string {
	name := modelID
	if i := strings.LastIndex(name, "/"); i >= 0 {
		name = name[i+1:]
	}
	name = strings.ToLower(strings.NewReplacer("-", "_", " ", "_").Replace(name))
	return name + "_trtllm_cookbook.ipynb"
}

// Model is what the notebook says about the model.
type Model struct {
	// ID is the HuggingFace model id.
	ID string
	// Display is the model's name in prose ("Qwen3-8B"); the id's name part when empty.
	Display      string
	Architecture string
	// Params is the parameter count (0: not stated).
	Params int64
	// Experts and ExpertsPerToken describe a MoE (0: dense).
	Experts, ExpertsPerToken int64
	// Context is the context length in tokens (0: not stated).
	Context int64
	// MemoryBytes sizes the VRAM prerequisite; Precision names it ("BF16").
	MemoryBytes int64
	Precision   string
	// ConfigPath is the standalone config YAML, repository-relative.
	ConfigPath string
	// RemoteCode adds --trust_remote_code to trtllm-serve.
	RemoteCode bool
	// License, when known, is listed among the highlights.
	License string
	// Links are extra model resources (title -> URL), in order.
	Links [][2]string
	// Temperature and TopP are the recommended sampling parameters from the
	// model's generation_config.json; nil when unknown.
	Temperature, TopP *float64
	TopK              *int64
}

func (m Model) display() string {
	if m.Display != "" {
		return m.Display
	}
	if i := strings.LastIndex(m.ID, "/"); i >= 0 {
		return m.ID[i+1:]
	}
	return m.ID
}

// check refuses values that would change the notebook's Markdown or shell
// rather than fill it: each goes into one line (Architecture and ConfigPath
// in backticks, the id in a shell command too), and a link is a plain https
// URL with a plain title.
func (m Model) check() error {
	for _, v := range []struct{ what, s, bad string }{
		{"model id", m.ID, "\r\n`\"$\\ ()[]<>"},
		{"display name", m.Display, "\r\n"},
		{"architecture", m.Architecture, "\r\n` "},
		{"config path", m.ConfigPath, "\r\n`\"$\\ ;&|<>"},
		{"license", m.License, "\r\n"},
		{"precision", m.Precision, "\r\n"},
	} {
		if strings.ContainsAny(v.s, v.bad) {
			return fmt.Errorf("%s %q holds a character it may not (%q)", v.what, v.s, v.bad)
		}
	}
	for _, l := range m.Links {
		if l[0] == "" || strings.ContainsAny(l[0], "\r\n[]") || !strings.HasPrefix(l[1], "https://") || strings.ContainsAny(l[1], "\r\n ()<>") {
			return fmt.Errorf("link [%s](%s): want a one-line title without brackets and a plain https URL", l[0], l[1])
		}
	}
	return nil
}

type notebook struct {
	Cells         []map[string]any `json:"cells"`
	Metadata      json.RawMessage  `json:"metadata"`
	Nbformat      int              `json:"nbformat"`
	NbformatMinor int              `json:"nbformat_minor"`
}

var modelIDRE = regexp.MustCompile(`MODEL_ID = "([^"]+)"`)

// Render writes the notebook for m from the template's bytes. name (the
// template's path) is used in errors.
func Render(name string, template []byte, m Model) ([]byte, error) {
	if m.ID == "" || m.ConfigPath == "" {
		return nil, fmt.Errorf("cookbook for %q: model id and config path are required", m.ID)
	}
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("cookbook for %s: %w", m.ID, err)
	}
	var nb notebook
	dec := json.NewDecoder(bytes.NewReader(template))
	dec.UseNumber()
	if err := dec.Decode(&nb); err != nil {
		return nil, fmt.Errorf("parse notebook template %s: %w", name, err)
	}
	if nb.Nbformat != 4 || len(nb.Cells) == 0 {
		return nil, fmt.Errorf("parse notebook template %s: want an nbformat 4 notebook with cells, got nbformat %d with %d cells", name, nb.Nbformat, len(nb.Cells))
	}
	// The template's own model, to check that nothing of it is left.
	var tmplID string
	for _, c := range nb.Cells {
		if mm := modelIDRE.FindStringSubmatch(source(c)); mm != nil {
			tmplID = mm[1]
		}
	}
	if tmplID == "" {
		return nil, fmt.Errorf("notebook template %s: no MODEL_ID cell", name)
	}
	tmplName := tmplID[strings.LastIndex(tmplID, "/")+1:]
	done := map[string]bool{}
	for i, c := range nb.Cells {
		src := source(c)
		var out string
		switch {
		case strings.HasPrefix(src, "# Deploying"):
			out, done["title"] = titleCell(m), true
		case strings.Contains(src, "trtllm-serve"):
			out, done["serve"] = serveCell(m), true
		case strings.Contains(src, "OpenAI-Compatible Server") || strings.Contains(src, "Yaml here") || strings.Contains(src, "YAML here"):
			out, done["server"] = serverCell(m), true
		case modelIDRE.MatchString(src):
			out, done["client"] = modelIDRE.ReplaceAllString(src, fmt.Sprintf("MODEL_ID = %q", m.ID)), true
		case strings.Contains(src, "client.chat.completions.create") && strings.Contains(src, "top_p="):
			out = samplingCode(src, m)
		case strings.HasPrefix(src, "## Evaluation Parameters"):
			out, done["eval"] = evalCell(m), true
		case strings.HasPrefix(src, "## Additional Resources"):
			out, done["resources"] = resourcesCell(m), true
		default:
			out = src
		}
		setSource(c, out)
		if c["cell_type"] == "code" {
			c["outputs"] = []any{}
			c["execution_count"] = nil
		}
		// Every cell must now be free of the template's model.
		low := strings.ToLower(out)
		for _, s := range leftovers(tmplID, tmplName) {
			if strings.Contains(low, strings.ToLower(s)) && !strings.Contains(strings.ToLower(m.ID+" "+m.display()+" "+m.ConfigPath), strings.ToLower(s)) {
				return nil, fmt.Errorf("notebook template %s: cell %d still mentions %q after adaptation", name, i, s)
			}
		}
	}
	for _, k := range []string{"title", "serve", "server", "client", "eval", "resources"} {
		if !done[k] {
			return nil, fmt.Errorf("notebook template %s: no %s cell found to adapt", name, k)
		}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", indentOf(template))
	if err := enc.Encode(nb); err != nil {
		return nil, fmt.Errorf("write cookbook for %s: %w", m.ID, err)
	}
	out := b.Bytes()
	if err := Validate(out); err != nil {
		return nil, fmt.Errorf("cookbook for %s: %w", m.ID, err)
	}
	return out, nil
}

// leftovers are the template's model-specific strings.
func leftovers(id, name string) []string {
	out := []string{id, name, strings.ReplaceAll(name, "-", " "), strings.ToLower(name) + ".yaml"}
	if org, _, ok := strings.Cut(id, "/"); ok {
		out = append(out, org)
	}
	return out
}

func indentOf(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 && i+1 < len(b) {
		rest := b[i+1:]
		n := len(rest) - len(bytes.TrimLeft(rest, " "))
		if n > 0 && n <= 8 {
			return strings.Repeat(" ", n)
		}
	}
	return " "
}

func source(c map[string]any) string {
	switch s := c["source"].(type) {
	case string:
		return s
	case []any:
		var b strings.Builder
		for _, x := range s {
			if t, ok := x.(string); ok {
				b.WriteString(t)
			}
		}
		return b.String()
	}
	return ""
}

// setSource stores text as nbformat does: a list of lines, each but the last ending in "\n".
func setSource(c map[string]any, text string) {
	lines := strings.SplitAfter(text, "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	out := make([]any, len(lines))
	for i, l := range lines {
		out[i] = l
	}
	c["source"] = out
}

func titleCell(m Model) string {
	d := m.display()
	var b strings.Builder
	fmt.Fprintf(&b, "# Deploying %s with TensorRT-LLM\n\n", d)
	fmt.Fprintf(&b, "This notebook walks you through deploying the `%s` model using TensorRT-LLM.\n\n", m.ID)
	fmt.Fprintf(&b, "[TensorRT-LLM](https://nvidia.github.io/TensorRT-LLM/) is NVIDIA's open-source library for accelerating and optimizing LLM inference on NVIDIA GPUs. Support for %s is enabled through the AutoDeploy workflow. More details about AutoDeploy can be found [here](https://nvidia.github.io/TensorRT-LLM/torch/auto_deploy/auto-deploy.html).\n\n", d)
	b.WriteString("**Model Resources:**\n")
	fmt.Fprintf(&b, "- [HuggingFace Model Card](https://huggingface.co/%s)\n", m.ID)
	for _, l := range m.Links {
		fmt.Fprintf(&b, "- [%s](%s)\n", l[0], l[1])
	}
	b.WriteString("\n**Model Highlights:**\n")
	switch {
	case m.Params > 0 && m.Experts > 0:
		fmt.Fprintf(&b, "- %s-parameter Mixture of Experts (MoE): %d experts, %d active per token\n", human(m.Params), m.Experts, m.ExpertsPerToken)
	case m.Params > 0:
		fmt.Fprintf(&b, "- %s parameters, dense\n", human(m.Params))
	}
	if m.Architecture != "" {
		fmt.Fprintf(&b, "- Architecture `%s`\n", m.Architecture)
	}
	if m.Context > 0 {
		fmt.Fprintf(&b, "- %s token context length\n", numfmt.Commas(m.Context))
	}
	if m.License != "" {
		fmt.Fprintf(&b, "- %s License\n", m.License)
	}
	b.WriteString("\n**Prerequisites:**\n")
	if m.MemoryBytes > 0 {
		prec := m.Precision
		if prec == "" {
			prec = "its checkpoint precision"
		}
		fmt.Fprintf(&b, "- NVIDIA GPU(s) with recent drivers (≥ %d GB VRAM in total for %s) and CUDA 12.x\n", vram(m.MemoryBytes), prec)
	} else {
		b.WriteString("- NVIDIA GPU(s) with recent drivers and CUDA 12.x\n")
	}
	b.WriteString("- Python 3.10+\n")
	b.WriteString("- TensorRT-LLM ([container](https://catalog.ngc.nvidia.com/orgs/nvidia/teams/tensorrt-llm/containers/release) or pip install)")
	return b.String()
}

// vram is the weights plus a quarter for activations and KV cache, rounded up to 8 GB.
func vram(mem int64) int64 {
	g := float64(mem) / 1e9 * 1.25
	return int64(math.Ceil(g/8) * 8)
}

func human(n int64) string {
	switch {
	case n >= 1e9:
		return strings.TrimSuffix(strings.TrimSuffix(fmt.Sprintf("%.1f", float64(n)/1e9), "0"), ".") + "B"
	case n >= 1e6:
		return fmt.Sprintf("%.0fM", float64(n)/1e6)
	}
	return numfmt.Commas(n)
}

func serverCell(m Model) string {
	return "## OpenAI-Compatible Server\n\n" +
		"Start a local OpenAI-compatible server with TensorRT-LLM via the terminal, within the running docker container.\n\n" +
		"Ensure that the following commands are executed from the docker terminal.\n\n" +
		fmt.Sprintf("Start with the %s YAML here: `%s`", m.display(), m.ConfigPath)
}

func serveCell(m Model) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### Load the Model\n\nLaunch the TensorRT-LLM server with %s:\n\n```shell\n", m.display())
	fmt.Fprintf(&b, "trtllm-serve %q \\\n  --host 0.0.0.0 \\\n  --port 8000 \\\n  --backend _autodeploy \\\n", m.ID)
	if m.RemoteCode {
		b.WriteString("  --trust_remote_code \\\n")
	}
	fmt.Fprintf(&b, "  --extra_llm_api_options %s\n```", m.ConfigPath)
	return b.String()
}

var (
	tempRE = regexp.MustCompile(`temperature=[0-9.]+`)
	topPRE = regexp.MustCompile(`top_p=[0-9.]+`)
)

func (m Model) sampling() (temp, topP float64, known bool) {
	temp, topP = 0.7, 0.95
	if m.Temperature != nil {
		temp, known = *m.Temperature, true
	}
	if m.TopP != nil {
		topP, known = *m.TopP, true
	}
	return temp, topP, known
}

func samplingCode(src string, m Model) string {
	t, p, _ := m.sampling()
	src = tempRE.ReplaceAllString(src, "temperature="+num(t))
	return topPRE.ReplaceAllString(src, "top_p="+num(p))
}

func num(f float64) string { return fmt.Sprintf("%g", f) }

func evalCell(m Model) string {
	t, p, known := m.sampling()
	var b strings.Builder
	b.WriteString("## Evaluation Parameters\n\n")
	if known {
		fmt.Fprintf(&b, "The model's `generation_config.json` recommends these sampling parameters:\n\n")
	} else {
		fmt.Fprintf(&b, "Check the [model card](https://huggingface.co/%s) for recommended sampling parameters; these general defaults are a reasonable start:\n\n", m.ID)
	}
	fmt.Fprintf(&b, "- `temperature`: %s\n- `top_p`: %s\n", num(t), num(p))
	if m.TopK != nil {
		fmt.Fprintf(&b, "- `top_k`: %d\n", *m.TopK)
	}
	if m.Context > 0 {
		fmt.Fprintf(&b, "- `max_tokens`: up to %d (the context length, prompt included)\n", m.Context)
	}
	b.WriteString("\n**Deterministic Tasks**\n- `temperature`: 0")
	return b.String()
}

func resourcesCell(m Model) string {
	var b strings.Builder
	b.WriteString("## Additional Resources\n\n")
	b.WriteString("- [TensorRT-LLM Documentation](https://nvidia.github.io/TensorRT-LLM/)\n")
	b.WriteString("- [AutoDeploy Guide](https://nvidia.github.io/TensorRT-LLM/torch/auto_deploy/auto-deploy.html)\n")
	fmt.Fprintf(&b, "- [%s on HuggingFace](https://huggingface.co/%s)", m.display(), m.ID)
	for _, l := range m.Links {
		fmt.Fprintf(&b, "\n- [%s](%s)", l[0], l[1])
	}
	return b.String()
}

// Validate checks that b is an nbformat-4 notebook without outputs: JSON,
// nbformat 4, every cell with a known cell_type, metadata and source, code
// cells with empty outputs and no execution count.
func Validate(b []byte) error {
	var nb struct {
		Cells    []map[string]json.RawMessage `json:"cells"`
		Metadata map[string]any               `json:"metadata"`
		Nbformat *int                         `json:"nbformat"`
		Minor    *int                         `json:"nbformat_minor"`
	}
	if err := json.Unmarshal(b, &nb); err != nil {
		return fmt.Errorf("notebook is not JSON: %w", err)
	}
	if nb.Nbformat == nil || *nb.Nbformat != 4 || nb.Minor == nil || nb.Metadata == nil {
		return fmt.Errorf("notebook lacks nbformat 4, nbformat_minor or metadata")
	}
	for i, c := range nb.Cells {
		var typ string
		json.Unmarshal(c["cell_type"], &typ)
		if _, ok := c["source"]; !ok {
			return fmt.Errorf("cell %d has no source", i)
		}
		if _, ok := c["metadata"]; !ok {
			return fmt.Errorf("cell %d has no metadata", i)
		}
		switch typ {
		case "markdown", "raw":
		case "code":
			if string(c["outputs"]) != "[]" || string(c["execution_count"]) != "null" {
				return fmt.Errorf("code cell %d has outputs or an execution count", i)
			}
		default:
			return fmt.Errorf("cell %d has cell_type %q", i, typ)
		}
	}
	return nil
}
