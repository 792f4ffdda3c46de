package modelconfig

import (
	"strings"
	"testing"

	"github.com/nvidia/adbot/internal/fixtures"
	"github.com/nvidia/adbot/internal/golden"
	"github.com/nvidia/adbot/onboarding/edit/edittest"
	"gopkg.in/yaml.v3"
)

func cfg(t *testing.T, name string) []byte {
	return fixtures.Read(t, "trtllm", "examples", "auto_deploy", "model_registry", "configs", name)
}

func TestWorldSizeKey(t *testing.T) {
	if got := WorldSizeKey(cfg(t, "world_size_2.yaml")); got != KeyTP {
		t.Errorf("world_size_2.yaml: %q", got)
	}
	v := fixtures.Read(t, "trtllm", "_variants", "4e71d888b5837ee654c7250bd23be593f71996b6", "examples", "auto_deploy", "model_registry", "configs", "world_size_2.yaml")
	if got := WorldSizeKey(v); got != KeyWorldSize {
		t.Errorf("variant world_size_2.yaml: %q", got)
	}
	if got := WorldSizeKey(nil); got != KeyWorldSize {
		t.Errorf("nil: %q", got)
	}
}

func TestRender(t *testing.T) {
	tests := []struct {
		name string
		o    Options
	}{
		{"qwen3_8b", Options{ModelID: "Qwen/Qwen3-8B", Display: "Qwen3 8B", Base: nil, WorldSize: 2, WorldKey: KeyTP}},
		{"deepseek_v3_reduced", Options{ModelID: "deepseek-ai/DeepSeek-V3", Display: "DeepSeek-V3", WorldSize: 8, RemoteCode: true, Layers: 5}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Base = cfg(t, "dashboard_default.yaml")
			out, err := Render(tc.o)
			if err != nil {
				t.Fatal(err)
			}
			layers, ws, err := Read("x", out)
			if err != nil || layers != tc.o.Layers || ws != tc.o.WorldSize {
				t.Errorf("reads back layers %d world size %d (%v)", layers, ws, err)
			}
			// Everything of dashboard_default.yaml is there.
			var base, got map[string]any
			yaml.Unmarshal(tc.o.Base, &base)
			yaml.Unmarshal(out, &got)
			for k := range base {
				if _, ok := got[k]; !ok {
					t.Errorf("key %s of dashboard_default.yaml missing", k)
				}
			}
			golden.Check(t, tc.name+".yaml.golden", out)
		})
	}
	if _, err := Render(Options{ModelID: "a/b"}); err == nil {
		t.Error("world size 0: no error")
	}
	for _, o := range []Options{
		{ModelID: "a/b", Display: "B\nworld_size: 64", WorldSize: 2},
		{ModelID: "a/b", Display: "B\rtrust_remote_code: true", WorldSize: 2},
		{ModelID: "a/b\nx: 1", WorldSize: 2},
	} {
		if out, err := Render(o); err == nil {
			t.Errorf("Render(%q, %q) = %q, want an error: a line break ends the header comment", o.ModelID, o.Display, out)
		}
	}
}

func TestSetLayers(t *testing.T) {
	tests := []struct {
		name, file string
		n          int
		changed    bool
	}{
		{"five_to_three", "num_hidden_layers_5.yaml", 3, true},
		{"five_kept", "num_hidden_layers_5.yaml", 5, false},
		{"five_to_full", "num_hidden_layers_5.yaml", 0, true},
		{"step_reduced", "step-3.7-flash.yaml", 4, true},
		{"step_full", "step-3.7-flash.yaml", 0, false},
		{"glm_reduced", "glm-4.7-flash.yaml", 2, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			old := cfg(t, tc.file)
			out, changed, err := SetLayers(old, tc.n)
			if err != nil {
				t.Fatal(err)
			}
			if changed != tc.changed {
				t.Errorf("changed %v, want %v", changed, tc.changed)
			}
			again, ch2, err := SetLayers(out, tc.n)
			if err != nil || ch2 || string(again) != string(out) {
				t.Errorf("not idempotent: %v %v", ch2, err)
			}
			l, _, err := Read(tc.file, out)
			if err != nil || l != tc.n {
				t.Errorf("reads back %d, %v", l, err)
			}
			golden.Check(t, "layers_"+tc.name+".diff.golden", []byte(edittest.Diff(old, out)))
		})
	}
}

func TestSetScalar(t *testing.T) {
	old := cfg(t, "step-3.7-flash.yaml")
	out, changed, err := SetScalar(old, "world_size", "8")
	if err != nil || changed || string(out) != string(old) {
		t.Errorf("same value: changed %v, %v", changed, err)
	}
	out, changed, err = SetScalar(old, "world_size", "4")
	if err != nil || !changed {
		t.Fatalf("changed %v, %v", changed, err)
	}
	if d := edittest.Diff(old, out); d != "@@ line 4: -1 +1\n-world_size: 8\n+world_size: 4\n" {
		t.Errorf("diff:\n%s", d)
	}
	// A block is not a scalar.
	if _, _, err := SetScalar(old, "kv_cache_config", "1"); err == nil || !strings.Contains(err.Error(), "block") {
		t.Errorf("block: %v", err)
	}
	// Appended when absent, comment kept.
	out, _, err = SetScalar(cfg(t, "world_size_2.yaml"), "trust_remote_code", "true")
	if err != nil || string(out) != "# Configuration for 2 GPU models\ntensor_parallel_size: 2\ntrust_remote_code: true\n" {
		t.Errorf("append: %q %v", out, err)
	}
	// A comment after a value survives.
	out, _, err = SetScalar([]byte("world_size: 2 # two GPUs\n"), "world_size", "4")
	if err != nil || string(out) != "world_size: 4 # two GPUs\n" {
		t.Errorf("comment: %q %v", out, err)
	}
}

func TestNestedLayoutRefused(t *testing.T) {
	old := fixtures.Read(t, "trtllm", "_variants", "96d28b704919f1f812f50d2b6c99afee4aceaed3", "examples", "auto_deploy", "model_registry", "configs", "glm-4.7-flash.yaml")
	if _, _, err := SetLayers(old, 3); err == nil || !strings.Contains(err.Error(), "nested") {
		t.Errorf("SetLayers: %v", err)
	}
	if _, _, err := SetScalar(old, "world_size", "2"); err == nil {
		t.Error("SetScalar: no error")
	}
	stub := fixtures.Read(t, "trtllm", "_variants", "4e711b935877a9f958077bdd296a0f473bbf5211", "examples", "auto_deploy", "model_registry", "configs", "num_hidden_layers_5.yaml")
	out, changed, err := SetLayers(stub, 5)
	if err != nil || !changed || !strings.HasPrefix(string(out), string(stub)) {
		t.Errorf("stub: %q %v %v", out, changed, err)
	}
	if _, _, err := SetLayers([]byte("a: [\n"), 2); err == nil {
		t.Error("broken YAML: no error")
	}
}

func FuzzSetLayers(f *testing.F) {
	f.Add([]byte("model_kwargs:\n  num_hidden_layers: 5\n  torch_dtype: bfloat16\n"), 3)
	f.Add([]byte("# c\nmax_seq_len: 4096\n"), 0)
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		if n < 0 || n > 1000 {
			return
		}
		out, _, err := SetLayers(b, n)
		if err != nil {
			return
		}
		again, changed, err := SetLayers(out, n)
		if err != nil || changed || string(again) != string(out) {
			t.Fatalf("not idempotent on %q: %v %v", out, changed, err)
		}
	})
}
