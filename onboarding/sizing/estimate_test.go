package sizing

import (
	"errors"
	"math"
	"testing"

	"github.com/nvidia/adbot/internal/fixtures"
)

func loadConfig(t *testing.T, dir string) *Config {
	t.Helper()
	p := fixtures.Path(t, "hf", dir, "config.json")
	c, err := ParseConfig(p, fixtures.Read(t, "hf", dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestEstimatePublished checks the estimate against each model's published
// parameter total (model cards, papers, the Hub's safetensors summary).
func TestEstimatePublished(t *testing.T) {
	tests := []struct {
		dir       string
		published float64 // parameters
		tol       float64 // relative
	}{
		{"meta-llama__Llama-3.1-8B", 8.03e9, 0.03},
		{"Qwen__Qwen3-8B", 8.19e9, 0.03},
		{"mistralai__Mixtral-8x7B-v0.1", 46.7e9, 0.03},
		{"Qwen__Qwen3-30B-A3B", 30.5e9, 0.03},
		{"openai__gpt-oss-20b", 20.9e9, 0.03},
		{"microsoft__Phi-3-mini-128k-instruct", 3.82e9, 0.03},
		{"deepseek-ai__DeepSeek-V3", 685e9, 0.03},
		{"nvidia__Nemotron-H-56B-Base-8K", 56e9, 0.03},
		// Published 27.4B (model card of google/gemma-3-27b-it, text + SigLIP).
		{"google__gemma-3-27b-it", 27.4e9, 0.03},
		// Published 744B (GLM-5 announcement); the checkpoint adds an MTP layer.
		{"zai-org__GLM-5", 744e9, 0.03},
		// Counted from the fixture's safetensors header: 46,282.
		{"tiny-random-PhiModel", 46282, 0},
		// Qwen3-0.6B ties embeddings: 596M without the lm_head the checkpoint
		// also stores (751,632,384 from the Hub).
		{"Qwen__Qwen3-0.6B", 596049920, 0},
	}
	for _, tc := range tests {
		t.Run(tc.dir, func(t *testing.T) {
			est, err := EstimateParams(loadConfig(t, tc.dir))
			if err != nil {
				t.Fatal(err)
			}
			rel := (float64(est.Params) - tc.published) / tc.published
			t.Logf("%s: estimate %d (%.3gB), published %.4gB, error %+.2f%% %v", tc.dir, est.Params, float64(est.Params)/1e9, tc.published/1e9, rel*100, est.Notes)
			if math.Abs(rel) > tc.tol {
				t.Errorf("estimate %d is %.2f%% from published %.0f (tolerance %.1f%%)", est.Params, rel*100, tc.published, tc.tol*100)
			}
			if est.Parts.Total() != est.Params {
				t.Errorf("parts add to %d, params %d", est.Parts.Total(), est.Params)
			}
		})
	}
}

func TestEstimateUnknown(t *testing.T) {
	tests := []struct {
		name, config string
		wantUnknown  bool
		wantField    string
	}{
		{"unknown model_type", `{"architectures":["FooForCausalLM"],"model_type":"foo","hidden_size":8}`, true, ""},
		{"no model_type", `{"architectures":["FooForCausalLM"]}`, true, ""},
		{"text_config without model_type", `{"model_type":"x","text_config":{"hidden_size":4}}`, true, ""},
		{"llm_config nesting", `{"model_type":"internvl_chat","llm_config":{"model_type":"qwen2"}}`, true, ""},
		{"missing hidden_size", `{"model_type":"llama","num_hidden_layers":2,"vocab_size":10,"num_attention_heads":2,"intermediate_size":4}`, false, "hidden_size"},
		{"missing intermediate_size", `{"model_type":"llama","hidden_size":8,"num_hidden_layers":2,"vocab_size":10,"num_attention_heads":2}`, false, "intermediate_size"},
		{"MLA without kv_lora_rank", `{"model_type":"deepseek_v3","hidden_size":8,"num_hidden_layers":2,"vocab_size":10,"num_attention_heads":2,"intermediate_size":4}`, false, "kv_lora_rank"},
		{"nemotron_h unknown layer", `{"model_type":"nemotron_h","hidden_size":8,"vocab_size":10,"hybrid_override_pattern":"M-Q"}`, true, ""},
		{"nemotron_h without pattern", `{"model_type":"nemotron_h","hidden_size":8,"vocab_size":10}`, false, "hybrid_override_pattern"},
		{"hidden_size a string", `{"model_type":"llama","hidden_size":"8","num_hidden_layers":2,"vocab_size":10,"num_attention_heads":2,"intermediate_size":4}`, false, "hidden_size"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig("test/config.json", []byte(tc.config))
			if err != nil {
				t.Fatal(err)
			}
			est, err := EstimateParams(c)
			if err == nil {
				t.Fatalf("got estimate %d, want an error", est.Params)
			}
			var ue *UnknownError
			var me *MissingFieldError
			switch {
			case tc.wantUnknown && !errors.As(err, &ue):
				t.Errorf("got %v, want *UnknownError", err)
			case tc.wantField != "" && (!errors.As(err, &me) || me.Field != tc.wantField):
				t.Errorf("got %v, want missing field %q", err, tc.wantField)
			}
			if tc.wantField != "" && me != nil && me.Config != "test/config.json" {
				t.Errorf("error names %q, want the file", me.Config)
			}
			t.Log(err)
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, in := range []string{`{"model_type": "llama",`, `[1,2]`, `null`, ``} {
		_, err := ParseConfig("dir/config.json", []byte(in))
		if err == nil {
			t.Errorf("ParseConfig(%q): no error", in)
			continue
		}
		if got := err.Error(); len(got) < len("decode dir/config.json") || got[:len("decode dir/config.json")] != "decode dir/config.json" {
			t.Errorf("ParseConfig(%q) = %q, want it to name the file", in, got)
		}
	}
}

// TestEstimateRejectsOverflow: figures no real model has, whose products
// overflow int64, are refused rather than turned into a negative or wrapped
// parameter count.
func TestEstimateRejectsOverflow(t *testing.T) {
	for name, s := range map[string]string{
		"shared experts":               `{"model_type":"deepseek_v3","hidden_size":8,"num_hidden_layers":2,"vocab_size":10,"num_attention_heads":2,"intermediate_size":4,"kv_lora_rank":2,"qk_rope_head_dim":2,"qk_nope_head_dim":2,"v_head_dim":2,"n_routed_experts":4,"first_k_dense_replace":1,"n_shared_experts":4000000000000000,"moe_intermediate_size":16000000}`,
		"shared expert size":           `{"model_type":"qwen3_moe","hidden_size":8,"num_hidden_layers":2,"vocab_size":10,"num_attention_heads":2,"intermediate_size":4,"num_experts":4,"moe_intermediate_size":4,"shared_expert_intermediate_size":9000000000000000}`,
		"every dimension at the bound": `{"model_type":"llama","hidden_size":16000000,"num_hidden_layers":16000000,"vocab_size":16000000,"num_attention_heads":2,"intermediate_size":16000000}`,
	} {
		c, err := ParseConfig(name, []byte(s))
		if err != nil {
			t.Fatal(err)
		}
		if est, err := EstimateParams(c); err == nil {
			t.Errorf("%s: estimate %d (%+v), want an error", name, est.Params, est.Parts)
		}
	}
}

func FuzzEstimate(f *testing.F) {
	f.Add([]byte(`{"model_type":"llama","hidden_size":8,"num_hidden_layers":2,"vocab_size":10,"num_attention_heads":2,"intermediate_size":4}`))
	f.Add([]byte(`{"model_type":"deepseek_v3","hidden_size":8,"num_hidden_layers":2,"vocab_size":10,"num_attention_heads":2,"intermediate_size":4,"kv_lora_rank":2,"qk_rope_head_dim":2,"qk_nope_head_dim":2,"v_head_dim":2,"n_routed_experts":4,"first_k_dense_replace":1,"num_nextn_predict_layers":1}`))
	f.Add([]byte(`{"model_type":"nemotron_h","hidden_size":8,"vocab_size":10,"hybrid_override_pattern":"M*-","mamba_num_heads":2,"mamba_head_dim":2,"n_groups":1,"ssm_state_size":2,"conv_kernel":4,"num_attention_heads":2,"intermediate_size":4,"time_step_limit":[0.0, Infinity]}`))
	f.Add([]byte(`{"model_type":"gemma3","text_config":{"model_type":"gemma3_text","hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":4},"vision_config":{"model_type":"siglip_vision_model","hidden_size":4,"intermediate_size":4,"num_hidden_layers":1,"image_size":4,"patch_size":2,"vision_use_head":false}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig("fuzz", b)
		if err != nil {
			return
		}
		est, err := EstimateParams(c)
		if err == nil && est.Parts.Total() != est.Params {
			t.Fatalf("parts %d != params %d", est.Parts.Total(), est.Params)
		}
		if err == nil && (est.Params < 0 || est.Params > MaxParams) {
			t.Fatalf("params %d out of range", est.Params)
		}
	})
}

// TestEstimateInline covers families the fixtures lack, with the fields of
// the models' published config.json files written out here.
func TestEstimateInline(t *testing.T) {
	tests := []struct {
		name      string
		config    string
		published float64
	}{
		// Qwen/Qwen2.5-7B-Instruct: 7.62B; q/k/v biases.
		{"Qwen2.5-7B", `{"architectures":["Qwen2ForCausalLM"],"model_type":"qwen2","hidden_size":3584,"intermediate_size":18944,"num_hidden_layers":28,"num_attention_heads":28,"num_key_value_heads":4,"vocab_size":152064,"tie_word_embeddings":false}`, 7.62e9},
		// meta-llama/Llama-3.2-1B: 1.24B; tied embeddings.
		{"Llama-3.2-1B", `{"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":2048,"intermediate_size":8192,"num_hidden_layers":16,"num_attention_heads":32,"num_key_value_heads":8,"vocab_size":128256,"tie_word_embeddings":true}`, 1.24e9},
		// mistralai/Mistral-7B-v0.1: 7.24B.
		{"Mistral-7B", `{"architectures":["MistralForCausalLM"],"model_type":"mistral","hidden_size":4096,"intermediate_size":14336,"num_hidden_layers":32,"num_attention_heads":32,"num_key_value_heads":8,"vocab_size":32000,"tie_word_embeddings":false}`, 7.24e9},
	}
	for _, tc := range tests {
		c, err := ParseConfig(tc.name, []byte(tc.config))
		if err != nil {
			t.Fatal(err)
		}
		est, err := EstimateParams(c)
		if err != nil {
			t.Fatal(err)
		}
		rel := (float64(est.Params) - tc.published) / tc.published
		t.Logf("%s: estimate %d, published %.3gB, error %+.2f%%", tc.name, est.Params, tc.published/1e9, rel*100)
		if math.Abs(rel) > 0.01 {
			t.Errorf("%s: %.2f%% from published", tc.name, rel*100)
		}
	}
}
