package sizing

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/nvidia/adbot/internal/fixtures"
	"github.com/nvidia/adbot/onboarding/hub"
)

func TestWorldSize(t *testing.T) {
	tests := []struct {
		params   int64
		want     int
		wantNote string
	}{
		{0, 0, "unknown"},
		{46282, 1, ""},
		{751632384, 1, ""},
		{1_999_999_999, 1, ""},
		{2_000_000_000, 2, ""},
		{8_030_261_248, 2, ""},
		{15_000_000_000, 2, ""},
		{15_000_000_001, 4, "15-20B gap"},
		{17_500_000_000, 4, "took 4"},
		{20_000_000_000, 4, ""},
		{79_999_999_999, 4, ""},
		{80_000_000_000, 8, ""},
		{684_489_845_504, 8, ""},
	}
	for _, tc := range tests {
		got, note := WorldSize(tc.params)
		if got != tc.want {
			t.Errorf("WorldSize(%d) = %d, want %d", tc.params, got, tc.want)
		}
		if (tc.wantNote == "") != (note == "") || !strings.Contains(note, tc.wantNote) {
			t.Errorf("WorldSize(%d) note %q, want one containing %q", tc.params, note, tc.wantNote)
		}
	}
}

func TestCheckFit(t *testing.T) {
	h100 := func(i int, free uint64) GPU {
		return GPU{Index: i, Name: "NVIDIA H100 80GB HBM3", MemTotal: 85_520_809_984, MemFree: free}
	}
	yes, no := true, false
	tests := []struct {
		name  string
		mem   int64
		ws    int
		gpus  []GPU
		want  *bool
		wantR string
	}{
		{"no inventory", 16e9, 2, nil, nil, "no GPUs"},
		{"fits", 16e9, 2, []GPU{h100(0, 80e9), h100(1, 80e9)}, &yes, "~16 GB fits in 171 GB across 2 GPUs (160 GB free now)"},
		{"too big", 1_370_000_000_000, 8, []GPU{h100(0, 0), h100(1, 0)}, &no,
			"This model requires ~1370 GB but the system only has 171 GB across 2 GPUs. Onboarding is likely to fail at the e2e run stage."},
		{"too few GPUs", 16e9, 2, []GPU{h100(0, 80e9)}, &no, "needs 2 GPUs and the system has 1"},
		{"small model", 1_503_264_768, 1, []GPU{h100(0, 80e9)}, &yes, "~1.5 GB fits"},
		{"size unknown", 0, 0, []GPU{h100(0, 80e9)}, nil, "model size unknown"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := CheckFit(tc.mem, tc.ws, tc.gpus)
			if diff := cmp.Diff(got.OK, tc.want); diff != "" {
				t.Errorf("OK (-got +want):\n%s", diff)
			}
			if !strings.Contains(got.Reason, tc.wantR) {
				t.Errorf("reason %q, want it to contain %q", got.Reason, tc.wantR)
			}
		})
	}
}

// TestMakeFixtures sizes every HuggingFace fixture end to end.
func TestMakeFixtures(t *testing.T) {
	type want struct {
		params     int64
		source     string
		bpp        float64 // bytes per parameter, to 2%
		memGB      float64 // to 2%
		worldSize  int
		noteSubstr string
	}
	tests := []struct {
		dir  string
		api  bool // use api.json's safetensors summary
		want want
	}{
		{"Qwen__Qwen3-0.6B", true, want{751632384, SourceSafetensors, 2, 1.503, 1, ""}},
		{"Qwen__Qwen3-0.6B", false, want{596049920, SourceConfig, 2, 1.192, 1, ""}},
		{"meta-llama__Llama-3.1-8B", false, want{8030261248, SourceConfig, 2, 16.06, 2, ""}},
		{"Qwen__Qwen3-8B", false, want{8190735360, SourceConfig, 2, 16.38, 2, ""}},
		{"mistralai__Mixtral-8x7B-v0.1", false, want{46702792704, SourceConfig, 2, 93.4, 4, ""}},
		{"Qwen__Qwen3-30B-A3B", false, want{30532122624, SourceConfig, 2, 61.06, 4, ""}},
		// mxfp4 experts, bf16 attention, router, embeddings: the checkpoint is ~13.8 GB.
		{"openai__gpt-oss-20b", false, want{20914757184, SourceConfig, 0.66, 13.8, 4, ""}},
		{"microsoft__Phi-3-mini-128k-instruct", false, want{3821079552, SourceConfig, 2, 7.64, 2, ""}},
		// fp8 linear layers, bf16 embeddings and heads: the checkpoint is ~689 GB.
		{"deepseek-ai__DeepSeek-V3", false, want{684489845504, SourceConfig, 1.005, 688, 8, ""}},
		{"nvidia__Nemotron-H-56B-Base-8K", false, want{56324350464, SourceConfig, 2, 112.6, 4, ""}},
		{"google__gemma-3-27b-it", false, want{27432406640, SourceConfig, 2, 54.9, 4, ""}},
		{"zai-org__GLM-5", false, want{755767304448, SourceConfig, 2, 1511.5, 8, ""}},
		{"tiny-random-PhiModel", false, want{46282, SourceConfig, 4, 0.000185, 1, ""}},
	}
	for _, tc := range tests {
		t.Run(tc.dir, func(t *testing.T) {
			m := &hub.Model{ID: tc.dir}
			if tc.api {
				var err error
				m, err = hub.ParseModel(fixtures.Read(t, "hf", tc.dir, "api.json"))
				if err != nil {
					t.Fatal(err)
				}
			}
			in, err := FromModel(m, "config.json", fixtures.Read(t, "hf", tc.dir, "config.json"), "Hub API")
			if err != nil {
				t.Fatal(err)
			}
			p := Make(in, nil)
			t.Logf("%s: params %d (%s) %.3f B/param, %.2f GB, %d GPUs; %s", tc.dir, p.Params, p.ParamsSource, p.BytesPerParam, float64(p.MemoryBytes)/1e9, p.WorldSize, p.BytesDetail)
			if p.Params != tc.want.params || p.ParamsSource != tc.want.source || p.WorldSize != tc.want.worldSize {
				t.Errorf("got params %d (%s) world size %d, want %d (%s) %d", p.Params, p.ParamsSource, p.WorldSize, tc.want.params, tc.want.source, tc.want.worldSize)
			}
			if !near(p.BytesPerParam, tc.want.bpp, 0.02) {
				t.Errorf("bytes per param %.4f, want %.4f", p.BytesPerParam, tc.want.bpp)
			}
			if !near(float64(p.MemoryBytes)/1e9, tc.want.memGB, 0.02) {
				t.Errorf("memory %.3f GB, want %.3f", float64(p.MemoryBytes)/1e9, tc.want.memGB)
			}
			if p.Fits.OK != nil || p.Fits.Reason == "" {
				t.Errorf("fit %+v without inventory, want unknown with a reason", p.Fits)
			}
		})
	}
}

func near(got, want, rel float64) bool {
	if want == 0 {
		return got == 0
	}
	d := (got - want) / want
	return d <= rel && d >= -rel
}

func TestMakeUnknown(t *testing.T) {
	c, err := ParseConfig("x/config.json", []byte(`{"architectures":["FooForCausalLM"],"model_type":"foo"}`))
	if err != nil {
		t.Fatal(err)
	}
	p := Make(Input{ModelID: "a/b", Config: c}, []GPU{{MemTotal: 80e9}})
	if p.ParamsSource != SourceUnknown || p.Params != 0 || p.WorldSize != 0 || p.MemoryBytes != 0 {
		t.Errorf("got %+v, want an unknown plan", p)
	}
	if !strings.Contains(p.ParamsDetail, `model_type "foo"`) || !strings.Contains(p.Note, "unknown") {
		t.Errorf("detail %q / note %q should say why", p.ParamsDetail, p.Note)
	}
	if p.Fits.OK != nil {
		t.Errorf("fit %v, want unknown", *p.Fits.OK)
	}
}

func TestMakeQuantizedSafetensors(t *testing.T) {
	// The Hub's per-dtype counts give the memory exactly.
	in := Input{ModelID: "a/b", Tensors: &hub.Tensors{Parameters: map[string]int64{"BF16": 1e9, "F8_E4M3": 10e9, "F32": 1e6}, Total: 11_001_000_000}}
	p := Make(in, nil)
	if want := int64(2e9 + 10e9 + 4e6); p.MemoryBytes != want {
		t.Errorf("memory %d, want %d", p.MemoryBytes, want)
	}
	if p.WorldSize != 2 {
		t.Errorf("world size %d, want 2", p.WorldSize)
	}
}

func TestQuantMethods(t *testing.T) {
	tests := []struct {
		qc   string
		want float64
	}{
		{`{"quant_method":"fp8"}`, 1},
		{`{"quant_method":"mxfp4"}`, 0.53125},
		{`{"quant_method":"modelopt","quant_algo":"NVFP4"}`, 0.5625},
		{`{"quant_method":"gptq","bits":4,"group_size":128}`, 0.53125},
		{`{"quant_method":"awq","bits":4}`, 0.53125},
		{`{"quant_method":"bitsandbytes","load_in_4bit":true}`, 0.5},
		{`{"quant_method":"compressed-tensors","config_groups":{"group_0":{"weights":{"num_bits":8}}}}`, 1},
		{`{"quant_method":"mystery"}`, 0},
	}
	for _, tc := range tests {
		c, err := ParseConfig("c", []byte(`{"quantization_config":`+tc.qc+`}`))
		if err != nil {
			t.Fatal(err)
		}
		if q := quantOf(c); q == nil || q.bytes != tc.want {
			t.Errorf("%s: got %+v, want %v bytes", tc.qc, q, tc.want)
		}
	}
}
