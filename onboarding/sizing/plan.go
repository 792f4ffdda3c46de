package sizing

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/nvidia/adbot/onboarding/hub"
)

// Params sources.
const (
	SourceSafetensors = "safetensors" // the Hub's safetensors summary or the checkpoint's headers
	SourceConfig      = "config"      // estimated from config.json
	SourceUnknown     = "unknown"
)

// Input is what sizing knows of a model.
type Input struct {
	ModelID string
	// Config is the decoded config.json (nil when it could not be read).
	Config *Config
	// Tensors is the safetensors summary (the Hub's, or counted from local
	// headers); nil when unknown.
	Tensors *hub.Tensors
	// TensorsFrom says where Tensors came from, for the report ("Hub API",
	// "local safetensors headers").
	TensorsFrom string
}

// GPU is one accelerator of an inventory, as the runner reads it through NVML.
type GPU struct {
	Index    int    `json:"index"`
	Name     string `json:"name,omitempty"`
	MemTotal uint64 `json:"mem_total"`
	MemFree  uint64 `json:"mem_free"`
}

// Fit is the onboarding workflow's Step 0 check.
type Fit struct {
	// OK is nil when no inventory was available to check against.
	OK     *bool  `json:"ok"`
	Reason string `json:"reason"`
}

// Plan is the sizing of one model.
type Plan struct {
	Params       int64  `json:"params"`
	ParamsSource string `json:"params_source"`
	// ParamsDetail says more about the source (e.g. "Hub API safetensors.total").
	ParamsDetail string `json:"params_detail,omitempty"`
	// Estimate is the config.json estimate, kept even when the safetensors
	// figure wins, so that the two can be compared.
	Estimate *Estimate `json:"estimate,omitempty"`
	// EstimateError says why there is no estimate.
	EstimateError string  `json:"estimate_error,omitempty"`
	BytesPerParam float64 `json:"bytes_per_param"`
	// BytesDetail says how bytes per parameter were found.
	BytesDetail string `json:"bytes_detail,omitempty"`
	MemoryBytes int64  `json:"memory_bytes"`
	// WorldSize is the GPU count by the workflow's rule; 0 when the size is unknown.
	WorldSize int `json:"world_size"`
	// Note explains a judgment call (the 15-20B gap, an unknown size).
	Note string `json:"note,omitempty"`
	Fits Fit    `json:"fits"`
}

// Make sizes a model and checks it against gpus (nil or empty: no
// inventory; the fit is then unknown).
func Make(in Input, gpus []GPU) Plan {
	var p Plan
	var est *Estimate
	if in.Config != nil {
		e, err := EstimateParams(in.Config)
		if err != nil {
			p.EstimateError = err.Error()
		} else {
			est = &e
			p.Estimate = est
		}
	} else {
		p.EstimateError = "no config.json"
	}
	switch {
	case in.Tensors != nil && in.Tensors.Total > 0:
		p.Params = in.Tensors.Total
		p.ParamsSource = SourceSafetensors
		p.ParamsDetail = "safetensors total"
		if in.TensorsFrom != "" {
			p.ParamsDetail += " from " + in.TensorsFrom
		}
	case est != nil:
		p.Params = est.Params
		p.ParamsSource = SourceConfig
		p.ParamsDetail = "estimated from config.json (" + est.ModelType + ")"
	default:
		p.ParamsSource = SourceUnknown
		p.ParamsDetail = p.EstimateError
	}
	p.MemoryBytes, p.BytesPerParam, p.BytesDetail = memory(in, p, est)
	p.WorldSize, p.Note = WorldSize(p.Params)
	p.Fits = CheckFit(p.MemoryBytes, p.WorldSize, gpus)
	return p
}

// safetensors dtype sizes in bytes.
var dtypeBytes = map[string]float64{
	"F64": 8, "I64": 8, "U64": 8,
	"F32": 4, "I32": 4, "U32": 4,
	"F16": 2, "BF16": 2, "I16": 2, "U16": 2,
	"F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1, "I8": 1, "U8": 1, "BOOL": 1,
	"F4": 0.5, "F6_E2M3": 0.75, "F6_E3M2": 0.75,
}

// memory works out the weights' bytes: exactly from per-dtype counts when
// the safetensors summary has them, else params times bytes per parameter
// from torch_dtype and quantization_config.
func memory(in Input, p Plan, est *Estimate) (int64, float64, string) {
	if p.ParamsSource == SourceSafetensors && len(in.Tensors.Parameters) > 0 {
		var b float64
		var unknown []string
		keys := make([]string, 0, len(in.Tensors.Parameters))
		for k := range in.Tensors.Parameters {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			sz, ok := dtypeBytes[strings.ToUpper(k)]
			if !ok {
				unknown = append(unknown, k)
				sz = 2
			}
			b += sz * float64(in.Tensors.Parameters[k])
		}
		detail := "checkpoint dtypes " + strings.Join(keys, ", ")
		if len(unknown) > 0 {
			detail += "; took 2 bytes for unknown " + strings.Join(unknown, ", ")
		}
		return int64(b), b / float64(p.Params), detail
	}
	if p.Params == 0 {
		return 0, 0, "parameter count unknown"
	}
	base, baseDetail := 2.0, "no torch_dtype: took bfloat16"
	var q *quant
	if in.Config != nil {
		base, baseDetail = dtypeOf(in.Config)
		q = quantOf(in.Config)
	}
	if q == nil {
		return int64(base * float64(p.Params)), base, baseDetail
	}
	if q.bytes == 0 {
		return int64(base * float64(p.Params)), base, baseDetail + "; quantization " + q.method + " not known: sized as unquantized"
	}
	// Quantization covers the linear layers of the blocks; embeddings,
	// lm_head, norms and routers stay in the base dtype, as do modules the
	// config names in modules_to_not_convert / ignore.
	var quantized int64
	if est != nil && p.ParamsSource == SourceConfig {
		pt := est.Parts
		if !q.skips("self_attn", "attn") {
			quantized += pt.Attention
		}
		if !q.skips("mlp", "shared_expert") {
			quantized += pt.MLP
		}
		if !q.skips("experts") {
			quantized += pt.Experts
		}
		if !q.skips("mixer", "mamba") {
			quantized += pt.SSM
		}
		quantized += pt.MTPLinear
	} else {
		quantized = p.Params // no split known
	}
	b := float64(quantized)*q.bytes + float64(p.Params-quantized)*base
	detail := fmt.Sprintf("%s weights at %.4g bytes, the rest %s", q.method, q.bytes, strings.TrimPrefix(baseDetail, "torch_dtype "))
	return int64(b), b / float64(p.Params), detail
}

func dtypeOf(c *Config) (float64, string) {
	for _, cc := range []*Config{c, c.Sub("text_config")} {
		if cc == nil {
			continue
		}
		for _, k := range []string{"torch_dtype", "dtype"} {
			if s := cc.String(k); s != "" {
				switch strings.TrimPrefix(s, "torch.") {
				case "bfloat16", "float16", "half", "bf16", "fp16":
					return 2, k + " " + s
				case "float32", "float", "fp32":
					return 4, k + " " + s
				case "float64", "double":
					return 8, k + " " + s
				case "float8_e4m3fn", "float8_e5m2", "fp8":
					return 1, k + " " + s
				}
				return 2, k + " " + s + " not known: took 2 bytes"
			}
		}
	}
	return 2, "no torch_dtype: took bfloat16"
}

type quant struct {
	method string
	bytes  float64 // 0: not known
	skip   []string
}

func (q *quant) skips(names ...string) bool {
	for _, s := range q.skip {
		for _, n := range names {
			if strings.Contains(s, n) {
				return true
			}
		}
	}
	return false
}

func quantOf(c *Config) *quant {
	qc := c.Sub("quantization_config")
	if qc == nil {
		if tc := c.Sub("text_config"); tc != nil {
			qc = tc.Sub("quantization_config")
		}
	}
	if qc == nil {
		return nil
	}
	q := &quant{method: strings.ToLower(qc.String("quant_method"))}
	for _, k := range []string{"modules_to_not_convert", "ignore", "ignored_layers", "exclude_modules"} {
		q.skip = append(q.skip, qc.Strings(k)...)
	}
	algo := strings.ToUpper(qc.String("quant_algo"))
	bits := qc.IntOr("bits", 0)
	switch {
	case q.method == "fp8" || q.method == "fbgemm_fp8" || algo == "FP8" || algo == "FP8_BLOCK_SCALES":
		q.bytes = 1
	case q.method == "mxfp4":
		q.bytes = 4.25 / 8 // 4-bit values, one 8-bit scale per 32
	case q.method == "nvfp4" || algo == "NVFP4":
		q.bytes = 4.5 / 8 // 4-bit values, one FP8 scale per 16
	case (q.method == "gptq" || q.method == "awq") && bits > 0:
		g := qc.IntOr("group_size", 128)
		if g <= 0 {
			g = 128
		}
		q.bytes = float64(bits)/8 + 4/float64(g)
	case q.method == "bitsandbytes":
		if qc.Bool("load_in_4bit", false) {
			q.bytes = 0.5
		} else if qc.Bool("load_in_8bit", false) {
			q.bytes = 1
		}
	case q.method == "compressed-tensors":
		if g := qc.Sub("config_groups"); g != nil {
			for _, v := range g.m {
				if gm, ok := v.(map[string]any); ok {
					if w, ok := gm["weights"].(map[string]any); ok {
						if nb, ok := w["num_bits"].(float64); ok && nb > 0 {
							q.bytes = nb / 8
						}
					}
				}
			}
		}
	}
	if q.method == "" {
		q.method = "quantization_config"
		if algo != "" {
			q.method = strings.ToLower(algo)
		}
	}
	return q
}

// WorldSize is the workflow's GPU count for a parameter count: 1 under 2B,
// 2 for 2-15B, 4 for 20-80B, 8 from 80B. The rule leaves 15-20B open;
// it gets 4 and a note saying so. An unknown count (0) gets 0 and a note.
func WorldSize(params int64) (int, string) {
	b := float64(params) / 1e9
	switch {
	case params <= 0:
		return 0, "parameter count unknown: choose the GPU count by hand"
	case b < 2:
		return 1, ""
	case b <= 15:
		return 2, ""
	case b < 20:
		return 4, fmt.Sprintf("%.1fB falls in the 15-20B gap the workflow's rule leaves open: took 4 GPUs", b)
	case b < 80:
		return 4, ""
	default:
		return 8, ""
	}
}

// ErrNoInventory is the reason a fit is unknown when no GPUs were read.
var ErrNoInventory = errors.New("no GPU inventory")

// CheckFit is the workflow's Step 0: the model's memory against the total
// memory of all GPUs, and the GPU count against the world size.
func CheckFit(memBytes int64, worldSize int, gpus []GPU) Fit {
	if len(gpus) == 0 {
		return Fit{Reason: "no GPUs to check against"}
	}
	var total, free uint64
	for _, g := range gpus {
		total += g.MemTotal
		free += g.MemFree
	}
	no, yes := false, true
	if memBytes <= 0 {
		return Fit{Reason: fmt.Sprintf("model size unknown; the system has %s GB across %d GPUs", gb(float64(total)), len(gpus))}
	}
	if uint64(memBytes) > total {
		return Fit{OK: &no, Reason: fmt.Sprintf("This model requires ~%s GB but the system only has %s GB across %d GPUs. Onboarding is likely to fail at the e2e run stage.",
			gb(float64(memBytes)), gb(float64(total)), len(gpus))}
	}
	if worldSize > len(gpus) {
		return Fit{OK: &no, Reason: fmt.Sprintf("The model fits in memory (~%s GB of %s GB) but its registry entry needs %d GPUs and the system has %d.",
			gb(float64(memBytes)), gb(float64(total)), worldSize, len(gpus))}
	}
	r := fmt.Sprintf("~%s GB fits in %s GB across %d GPUs (%s GB free now)", gb(float64(memBytes)), gb(float64(total)), len(gpus), gb(float64(free)))
	return Fit{OK: &yes, Reason: r}
}

// gb formats bytes as decimal gigabytes: one decimal under 10, none above.
func gb(b float64) string {
	g := b / 1e9
	if g < 10 {
		return fmt.Sprintf("%.1f", g)
	}
	return fmt.Sprintf("%.0f", math.Round(g))
}

// FromModel builds the input from a Hub (or local) model and its config.json
// bytes (nil when unavailable). A config.json that does not decode is an
// error naming it.
func FromModel(m *hub.Model, configName string, config []byte, tensorsFrom string) (Input, error) {
	in := Input{ModelID: m.ID, Tensors: m.Tensors, TensorsFrom: tensorsFrom}
	if config != nil {
		c, err := ParseConfig(configName, config)
		if err != nil {
			return Input{}, err
		}
		in.Config = c
	}
	return in, nil
}
