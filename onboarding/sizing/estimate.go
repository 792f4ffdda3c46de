package sizing

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Parts splits a parameter count by where the parameters sit; the split
// decides which of them a quantization_config applies to.
type Parts struct {
	Embed     int64 `json:"embed"`
	Head      int64 `json:"head"`
	Attention int64 `json:"attention"`
	MLP       int64 `json:"mlp"`
	Experts   int64 `json:"experts"`
	Router    int64 `json:"router"`
	Norm      int64 `json:"norm"`
	SSM       int64 `json:"ssm"`
	Vision    int64 `json:"vision"`
	// MTP is the multi-token-prediction layers (num_nextn_predict_layers),
	// which checkpoints store beside the main model.
	MTP int64 `json:"mtp"`
	// MTPLinear is the part of MTP in linear layers (quantized like the rest).
	MTPLinear int64 `json:"-"`
}

// Total is the sum of the parts.
func (p Parts) Total() int64 {
	return p.Embed + p.Head + p.Attention + p.MLP + p.Experts + p.Router + p.Norm + p.SSM + p.Vision + p.MTP
}

// Estimate is a parameter count worked out from config.json.
type Estimate struct {
	Params int64 `json:"params"`
	Parts  Parts `json:"parts"`
	// ModelType is the model_type the estimate was made for (the text
	// config's for a multimodal model).
	ModelType string `json:"model_type"`
	// Notes say what the estimate assumed or left out.
	Notes []string `json:"notes,omitempty"`
}

// UnknownError means the estimator does not know the architecture, so it
// gives no figure rather than a guess.
type UnknownError struct {
	ModelType    string
	Architecture string
	Reason       string
}

func (e *UnknownError) Error() string {
	return fmt.Sprintf("cannot estimate parameters of %s (model_type %q): %s", orUnknown(e.Architecture), e.ModelType, e.Reason)
}

func orUnknown(s string) string {
	if s == "" {
		return "an unnamed architecture"
	}
	return s
}

// kind is an estimator shape.
type kind int

const (
	kDecoder   kind = iota // dense or MoE transformer decoder, GQA or MLA attention
	kPhi                   // phi-1/phi-2: parallel block, LayerNorm with bias, biased linears
	kNemotronH             // hybrid Mamba-2 / attention / MLP by hybrid_override_pattern
)

// family holds what differs between model_types that config.json does not say.
type family struct {
	kind kind
	// gated MLPs have gate, up and down projections (SwiGLU); others up and down.
	gated bool
	// qkNorm adds per-head RMSNorm on q and k (Qwen3, Gemma 3, OLMo 2 has full-width ones).
	qkNorm bool
	// qkvBias is the attention bias when the config has no attention_bias key.
	qkvBias bool
	// oBiasWithAttnBias: attention_bias also biases o_proj (gpt-oss), and sinks.
	oBiasWithAttnBias bool
	sinks             bool
	// expertBias: experts' projections carry biases (gpt-oss).
	expertBias bool
	// routerBias: the router has a bias (gpt-oss) or a score-correction bias (noaux_tc).
	routerBias bool
	// normsPerLayer counts RMSNorms of hidden size per decoder layer.
	normsPerLayer int64
	// tied is the default of tie_word_embeddings when the config omits it.
	tied bool
	// defaults fill fields that transformers defaults and configs may omit.
	defaults map[string]int64
	// mla uses multi-head latent attention (q_lora_rank, kv_lora_rank).
	mla bool
	// moeFromLayer: MoE layers follow first_k_dense_replace / moe_layer_freq (DeepSeek style).
	deepseekMoE bool
}

var families = map[string]family{
	"llama":        {kind: kDecoder, gated: true, normsPerLayer: 2},
	"mistral":      {kind: kDecoder, gated: true, normsPerLayer: 2},
	"qwen2":        {kind: kDecoder, gated: true, qkvBias: true, normsPerLayer: 2},
	"qwen3":        {kind: kDecoder, gated: true, qkNorm: true, normsPerLayer: 2},
	"phi3":         {kind: kDecoder, gated: true, normsPerLayer: 2},
	"gemma":        {kind: kDecoder, gated: true, normsPerLayer: 2, tied: true},
	"gemma2":       {kind: kDecoder, gated: true, normsPerLayer: 4, tied: true},
	"gemma3_text":  {kind: kDecoder, gated: true, qkNorm: true, normsPerLayer: 4, tied: true, defaults: map[string]int64{"vocab_size": 262208}},
	"mixtral":      {kind: kDecoder, gated: true, normsPerLayer: 2},
	"qwen2_moe":    {kind: kDecoder, gated: true, qkvBias: true, normsPerLayer: 2},
	"qwen3_moe":    {kind: kDecoder, gated: true, qkNorm: true, normsPerLayer: 2},
	"gpt_oss":      {kind: kDecoder, gated: true, oBiasWithAttnBias: true, sinks: true, expertBias: true, routerBias: true, normsPerLayer: 2},
	"deepseek_v2":  {kind: kDecoder, gated: true, mla: true, deepseekMoE: true, normsPerLayer: 2},
	"deepseek_v3":  {kind: kDecoder, gated: true, mla: true, deepseekMoE: true, routerBias: true, normsPerLayer: 2},
	"deepseek_v32": {kind: kDecoder, gated: true, mla: true, deepseekMoE: true, routerBias: true, normsPerLayer: 2},
	"kimi_k2":      {kind: kDecoder, gated: true, mla: true, deepseekMoE: true, routerBias: true, normsPerLayer: 2},
	"glm_moe_dsa":  {kind: kDecoder, gated: true, mla: true, deepseekMoE: true, routerBias: true, normsPerLayer: 2},
	"glm4_moe":     {kind: kDecoder, gated: true, qkvBias: true, deepseekMoE: true, routerBias: true, normsPerLayer: 2},
	"phi":          {kind: kPhi},
	"nemotron_h":   {kind: kNemotronH},
}

// KnownModelTypes lists the model_types the estimator knows, sorted.
func KnownModelTypes() []string {
	out := make([]string, 0, len(families))
	for k := range families {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// EstimateParams works out a parameter count from a config.json. An
// architecture it does not know is an *UnknownError; a field it needs and
// does not find is a *MissingFieldError.
func EstimateParams(cfg *Config) (Estimate, error) {
	arch := ""
	if a := cfg.Strings("architectures"); len(a) > 0 {
		arch = a[0]
	}
	mt := cfg.String("model_type")
	text := cfg
	var est Estimate
	if tc := cfg.Sub("text_config"); tc != nil {
		text = tc
		if text.String("model_type") == "" {
			return Estimate{}, &UnknownError{ModelType: mt, Architecture: arch, Reason: "its text_config has no model_type"}
		}
	} else if cfg.Sub("llm_config") != nil || cfg.Sub("language_config") != nil {
		return Estimate{}, &UnknownError{ModelType: mt, Architecture: arch, Reason: "its language model is nested under a key the estimator does not read"}
	}
	tmt := text.String("model_type")
	if tmt == "" {
		return Estimate{}, &UnknownError{ModelType: mt, Architecture: arch, Reason: "config.json has no model_type"}
	}
	fam, ok := families[tmt]
	if !ok {
		return Estimate{}, &UnknownError{ModelType: tmt, Architecture: arch,
			Reason: fmt.Sprintf("the estimator knows only %s", strings.Join(KnownModelTypes(), ", "))}
	}
	// A headless model (PhiModel, LlamaModel) has no lm_head.
	head := arch == "" || !strings.HasSuffix(arch, "Model")
	var err error
	switch fam.kind {
	case kDecoder:
		est, err = decoder(text, fam, head)
	case kPhi:
		est, err = phi(text, head)
	case kNemotronH:
		est, err = nemotronH(text, head)
	}
	if err != nil {
		return Estimate{}, err
	}
	est.ModelType = tmt
	if vc := cfg.Sub("vision_config"); vc != nil && text != cfg {
		v, verr := vision(vc, text)
		var ue *UnknownError
		switch {
		case errors.As(verr, &ue):
			est.Notes = append(est.Notes, fmt.Sprintf("vision tower (%s) not counted: %s", vc.String("model_type"), ue.Reason))
		case verr != nil:
			return Estimate{}, verr
		default:
			est.Parts.Vision = v
			est.Notes = append(est.Notes, fmt.Sprintf("includes the %s vision tower and projector", vc.String("model_type")))
		}
	}
	est.Params = est.Parts.Total()
	if err := est.Parts.sane(cfg.path); err != nil {
		return Estimate{}, err
	}
	return est, nil
}

// MaxParams is the largest parameter count an estimate may come to: fifty
// times today's largest models. Beyond it the config's figures are not a real
// model's, and their products may have overflowed.
const MaxParams = 100e12

// sane rejects parts that no real model has: a negative part or a total over
// MaxParams, which is what overflowing products of hostile figures leave.
func (p Parts) sane(config string) error {
	for _, v := range []int64{p.Embed, p.Head, p.Attention, p.MLP, p.Experts, p.Router, p.Norm, p.SSM, p.Vision, p.MTP, p.MTPLinear} {
		if v < 0 {
			return fmt.Errorf("%s: the figures come to a negative parameter count: not a real model's", config)
		}
	}
	if t := p.Total(); t < 0 || t > MaxParams {
		return fmt.Errorf("%s: the figures come to %d parameters, over %.0e: not a real model's", config, t, float64(MaxParams))
	}
	return nil
}

func withDefaults(c *Config, fam family) *Config {
	if len(fam.defaults) == 0 {
		return c
	}
	m := make(map[string]any, len(c.m)+len(fam.defaults))
	for k, v := range c.m {
		m[k] = v
	}
	for k, v := range fam.defaults {
		if _, ok := m[k]; !ok || m[k] == nil {
			m[k] = float64(v)
		}
	}
	return &Config{m: m, path: c.path}
}

// decoder estimates a transformer decoder: embeddings, L layers of attention
// (GQA or MLA) and MLP (dense or MoE), final norm, lm_head.
func decoder(c *Config, fam family, head bool) (Estimate, error) {
	var notes []string
	for k := range fam.defaults {
		if !c.Has(k) {
			notes = append(notes, fmt.Sprintf("%s absent: took the transformers default %d", k, fam.defaults[k]))
		}
	}
	sort.Strings(notes)
	c = withDefaults(c, fam)
	r := &req{c: c}
	H := r.int("hidden_size")
	L := r.int("num_hidden_layers")
	V := r.int("vocab_size")
	nh := r.int("num_attention_heads")
	if r.err != nil {
		return Estimate{}, r.err
	}
	if err := plausible(c, H, L, V, nh); err != nil {
		return Estimate{}, err
	}
	var p Parts
	p.Embed = V * H
	tied := c.Bool("tie_word_embeddings", fam.tied)
	if head && !tied {
		p.Head = V * H
	}
	if head && tied {
		notes = append(notes, "tied embeddings: lm_head shares the embedding matrix (a checkpoint may still store it, as Qwen3-0.6B's does)")
	}
	// Attention, per layer.
	var attn int64
	if fam.mla {
		attn = mlaParams(r, H, nh)
	} else {
		nkv := c.IntOr("num_key_value_heads", nh)
		hd := c.IntOr("head_dim", 0)
		if hd == 0 {
			hd = H / nh
		}
		attn = H*nh*hd + 2*H*nkv*hd + nh*hd*H
		if c.Bool("attention_bias", fam.qkvBias) {
			attn += nh*hd + 2*nkv*hd
			if fam.oBiasWithAttnBias {
				attn += H
			}
		}
		if fam.sinks {
			attn += nh
		}
		if fam.qkNorm {
			attn += 2 * hd
		}
	}
	if r.err != nil {
		return Estimate{}, r.err
	}
	mlpMats := int64(2)
	if fam.gated {
		mlpMats = 3
	}
	// MoE layout.
	nExperts := c.IntOr("num_experts", c.IntOr("num_local_experts", c.IntOr("n_routed_experts", 0)))
	isMoE := func(i int64) bool { return false }
	var expertI, sharedI int64
	if nExperts > 0 {
		expertI = c.IntOr("moe_intermediate_size", c.IntOr("intermediate_size", 0))
		if expertI <= 0 {
			return Estimate{}, &MissingFieldError{Config: c.path, Field: "moe_intermediate_size"}
		}
		switch {
		case fam.deepseekMoE:
			k := c.IntOr("first_k_dense_replace", 0)
			freq := c.IntOr("moe_layer_freq", 1)
			if freq <= 0 {
				freq = 1
			}
			isMoE = func(i int64) bool { return i >= k && i%freq == 0 }
			sharedI = c.IntOr("n_shared_experts", 0) * expertI
		default:
			step := c.IntOr("decoder_sparse_step", 1)
			if step <= 0 {
				step = 1
			}
			dense := map[int64]bool{}
			for _, i := range c.Ints("mlp_only_layers") {
				dense[i] = true
			}
			isMoE = func(i int64) bool { return !dense[i] && (i+1)%step == 0 }
			sharedI = c.IntOr("shared_expert_intermediate_size", c.IntOr("n_shared_experts", 0)*expertI)
		}
	}
	var denseI int64
	needDense := false
	for i := int64(0); i < L; i++ {
		if !isMoE(i) {
			needDense = true
			break
		}
	}
	if needDense {
		denseI = r.int("intermediate_size")
		if r.err != nil {
			return Estimate{}, r.err
		}
	}
	mlpBias := c.Bool("mlp_bias", false)
	denseMLP := mlpMats * H * denseI
	if mlpBias {
		denseMLP += (mlpMats-1)*denseI + H
	}
	expert := mlpMats * H * expertI
	if fam.expertBias {
		expert += (mlpMats-1)*expertI + H
	}
	router := H * nExperts
	if fam.routerBias {
		router += nExperts
	}
	shared := mlpMats * H * sharedI
	if c.Has("shared_expert_intermediate_size") {
		shared += H // Qwen2-MoE's shared_expert_gate
	}
	norms := fam.normsPerLayer * H
	var moeLayers int64
	for i := int64(0); i < L; i++ {
		p.Attention += attn
		p.Norm += norms
		if isMoE(i) {
			moeLayers++
			p.Experts += nExperts * expert
			p.MLP += shared
			p.Router += router
		} else {
			p.MLP += denseMLP
		}
	}
	p.Norm += H // final norm
	if nExperts > 0 {
		notes = append(notes, fmt.Sprintf("MoE: %d of %d layers with %d experts", moeLayers, L, nExperts))
	}
	if n := c.IntOr("num_nextn_predict_layers", 0); n > 0 {
		// A DeepSeek-style MTP layer is a full (MoE) decoder layer plus
		// enorm, hnorm, eh_proj (2H -> H) and shared_head.norm; the checkpoint
		// stores its own embed_tokens and shared_head.head beside them.
		layer := attn + norms
		if nExperts > 0 {
			layer += nExperts*expert + shared + router
		} else {
			layer += denseMLP
		}
		per := layer + 2*H*H + 3*H + 2*V*H
		p.MTP = n * per
		p.MTPLinear = n * (layer - norms - router + 2*H*H)
		notes = append(notes, fmt.Sprintf("counts %d multi-token-prediction layer(s) (num_nextn_predict_layers), stored with their own embedding and head", n))
	}
	return Estimate{Parts: p, Notes: notes}, nil
}

// mlaParams is one multi-head-latent-attention block (DeepSeek V2/V3, Kimi
// K2, GLM-5), with the DSA indexer when the config has one.
func mlaParams(r *req, H, nh int64) int64 {
	c := r.c
	kvr := r.int("kv_lora_rank")
	rope := r.int("qk_rope_head_dim")
	nope := r.int("qk_nope_head_dim")
	vd := r.int("v_head_dim")
	qr := c.IntOr("q_lora_rank", 0)
	var n int64
	if qr > 0 {
		n += H*qr + qr + qr*nh*(nope+rope)
	} else {
		n += H * nh * (nope + rope)
	}
	n += H*(kvr+rope) + kvr + kvr*nh*(nope+vd) + nh*vd*H
	if ih := c.IntOr("index_n_heads", 0); ih > 0 {
		ihd := c.IntOr("index_head_dim", 128)
		src := qr
		if src == 0 {
			src = H
		}
		n += src*ih*ihd + H*ihd + 2*ihd + H*ih
	}
	return n
}

// phi estimates Phi-1/Phi-2 (model_type phi): one LayerNorm (with bias) per
// layer feeding attention and MLP in parallel, every linear biased.
func phi(c *Config, head bool) (Estimate, error) {
	r := &req{c: c}
	H := r.int("hidden_size")
	L := r.int("num_hidden_layers")
	V := r.int("vocab_size")
	nh := r.int("num_attention_heads")
	I := r.int("intermediate_size")
	if r.err != nil {
		return Estimate{}, r.err
	}
	if err := plausible(c, H, L, V, nh, I); err != nil {
		return Estimate{}, err
	}
	nkv := c.IntOr("num_key_value_heads", nh)
	hd := H / nh
	var p Parts
	p.Embed = V * H
	if head && !c.Bool("tie_word_embeddings", false) {
		p.Head = V*H + V // PhiForCausalLM's lm_head has a bias
	}
	attn := H*nh*hd + nh*hd + 2*(H*nkv*hd+nkv*hd) + nh*hd*H + H
	if c.Bool("qk_layernorm", false) {
		attn += 4 * hd
	}
	mlp := H*I + I + I*H + H
	p.Attention = L * attn
	p.MLP = L * mlp
	p.Norm = L*2*H + 2*H
	return Estimate{Parts: p}, nil
}

// nemotronH estimates Nemotron-H: hybrid_override_pattern gives each layer's
// mixer: M Mamba-2, * attention, - MLP (squared ReLU, not gated).
func nemotronH(c *Config, head bool) (Estimate, error) {
	r := &req{c: c}
	H := r.int("hidden_size")
	V := r.int("vocab_size")
	pattern := c.String("hybrid_override_pattern")
	if pattern == "" {
		return Estimate{}, &MissingFieldError{Config: c.path, Field: "hybrid_override_pattern"}
	}
	if r.err != nil {
		return Estimate{}, r.err
	}
	var p Parts
	p.Embed = V * H
	if head && !c.Bool("tie_word_embeddings", false) {
		p.Head = V * H
	}
	if err := plausible(c, H, int64(len(pattern)), V); err != nil {
		return Estimate{}, err
	}
	var nM, nA, nF int64
	for i, ch := range pattern {
		switch ch {
		case 'M':
			nM++
		case '*':
			nA++
		case '-':
			nF++
		default:
			return Estimate{}, &UnknownError{ModelType: "nemotron_h", Architecture: "NemotronHForCausalLM",
				Reason: fmt.Sprintf("hybrid_override_pattern has layer kind %q at position %d, which the estimator does not know", ch, i)}
		}
	}
	if L, ok := c.Int("num_hidden_layers"); ok && L != int64(len(pattern)) {
		return Estimate{}, fmt.Errorf("%s: hybrid_override_pattern has %d layers but num_hidden_layers is %d", c.path, len(pattern), L)
	}
	if nM > 0 {
		nhM := r.int("mamba_num_heads")
		hdM := r.int("mamba_head_dim")
		ng := r.int("n_groups")
		ds := r.int("ssm_state_size")
		k := r.int("conv_kernel")
		if r.err != nil {
			return Estimate{}, r.err
		}
		dIn := nhM * hdM
		conv := dIn + 2*ng*ds
		m := H*(dIn+conv+nhM) + conv*k + 3*nhM + dIn + dIn*H
		if c.Bool("use_conv_bias", true) {
			m += conv
		}
		if c.Bool("use_bias", false) {
			m += dIn + conv + nhM + H
		}
		p.SSM = nM * m
	}
	if nA > 0 {
		nh := r.int("num_attention_heads")
		if r.err != nil {
			return Estimate{}, r.err
		}
		nkv := c.IntOr("num_key_value_heads", nh)
		hd := c.IntOr("attention_head_dim", c.IntOr("head_dim", H/nh))
		a := H*nh*hd + 2*H*nkv*hd + nh*hd*H
		if c.Bool("attention_bias", false) {
			a += nh*hd + 2*nkv*hd + H
		}
		p.Attention = nA * a
	}
	if nF > 0 {
		I := r.int("intermediate_size")
		if r.err != nil {
			return Estimate{}, r.err
		}
		f := 2 * H * I
		if c.Bool("mlp_bias", false) {
			f += I + H
		}
		p.MLP = nF * f
	}
	p.Norm = int64(len(pattern))*H + H
	return Estimate{Parts: p, Notes: []string{fmt.Sprintf("hybrid: %d Mamba-2, %d attention, %d MLP layers", nM, nA, nF)}}, nil
}

// vision estimates a SigLIP vision tower and the Gemma 3 style projector
// (RMSNorm + linear to the text hidden size).
func vision(vc, text *Config) (int64, error) {
	mt := vc.String("model_type")
	if mt != "siglip_vision_model" {
		return 0, &UnknownError{ModelType: mt, Reason: "only SigLIP vision towers are known"}
	}
	r := &req{c: vc}
	Hv := r.int("hidden_size")
	Iv := r.int("intermediate_size")
	L := r.int("num_hidden_layers")
	img := r.int("image_size")
	patch := r.int("patch_size")
	if r.err != nil {
		return 0, r.err
	}
	ch := vc.IntOr("num_channels", 3)
	n := ch*patch*patch*Hv + Hv + (img/patch)*(img/patch)*Hv
	layer := 4*(Hv*Hv+Hv) + 4*Hv + Hv*Iv + Iv + Iv*Hv + Hv
	n += L*layer + 2*Hv
	if vc.Bool("vision_use_head", true) {
		return 0, &UnknownError{ModelType: mt, Reason: "a SigLIP pooling head is not modelled"}
	}
	H, _ := text.Int("hidden_size")
	n += Hv + Hv*H
	return n, nil
}

// maxDim bounds any one dimension; past it a config is not a real model. The
// products of several such dimensions can still overflow: EstimateParams
// checks the result (Parts.sane) as well.
const maxDim = 1 << 24

// plausible rejects dimensions no real model has.
func plausible(c *Config, dims ...int64) error {
	for _, d := range dims {
		if d > maxDim {
			return fmt.Errorf("%s: dimension %d is implausibly large", c.path, d)
		}
	}
	for _, k := range []string{"num_experts", "num_local_experts", "n_routed_experts", "moe_intermediate_size", "intermediate_size", "num_key_value_heads", "head_dim", "kv_lora_rank", "q_lora_rank", "num_nextn_predict_layers", "n_shared_experts", "shared_expert_intermediate_size"} {
		if v, ok := c.Int(k); ok && (v > maxDim || v < 0) {
			return fmt.Errorf("%s: %s %d is implausible", c.path, k, v)
		}
	}
	return nil
}
