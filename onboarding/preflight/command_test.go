package preflight

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nvidia/adbot/internal/fixtures"
	"github.com/nvidia/adbot/internal/golden"
	"github.com/nvidia/adbot/internal/gpu"
)

// hubServer serves the Qwen3-0.6B fixture (API answer and config.json) and
// refuses everything else as the Hub does.
func hubServer(t *testing.T) *httptest.Server {
	api := fixtures.Read(t, "hf", "Qwen__Qwen3-0.6B", "api.json")
	cfg := fixtures.Read(t, "hf", "Qwen__Qwen3-0.6B", "config.json")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/models/Qwen/Qwen3-0.6B":
			w.Write(api)
		case "/Qwen/Qwen3-0.6B/resolve/c1899de289a04d12100db370d81485cdf75e47ca/config.json":
			w.Write(cfg)
		case "/api/models":
			if r.URL.Query().Get("author") == "Qwen" && r.URL.Query().Get("search") == "Qwen3" {
				w.Write([]byte(`[{"id":"Qwen/Qwen3-0.6B"},{"id":"Qwen/Qwen3-0.6B-Base"},{"id":"Qwen/Qwen3-8B"},{"id":"Qwen/Qwen3.5-0.8B"}]`))
				return
			}
			w.Write([]byte(`[]`))
		default:
			w.Header().Set("X-Error-Code", "RepoNotFound")
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"Repository not found"}`))
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func h100s(n int) func(context.Context) ([]gpu.Device, error) {
	return func(context.Context) ([]gpu.Device, error) {
		var out []gpu.Device
		for i := 0; i < n; i++ {
			out = append(out, gpu.Device{Index: i, Name: "NVIDIA H100 80GB HBM3", MemTotal: 85_520_809_984, MemFree: 84_500_000_000})
		}
		return out, nil
	}
}

func noNVML(context.Context) ([]gpu.Device, error) {
	return nil, fmt.Errorf("initialize NVML: %w: ERROR_LIBRARY_NOT_FOUND", gpu.ErrNoNVML)
}

func run(t *testing.T, env map[string]string, inv func(context.Context) ([]gpu.Device, error), args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	r := &Runner{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] }, Inventory: inv}
	err := r.Run(context.Background(), args)
	return out.String(), err
}

var tmpRE = regexp.MustCompile(`(/tmp|` + regexp.QuoteMeta(os.TempDir()) + `)/[^\s"():]+`)

// stable replaces temporary paths and the test server's address.
func stable(s, srv string) string {
	if srv != "" {
		s = strings.ReplaceAll(s, srv, "http://HUB")
	}
	return tmpRE.ReplaceAllString(s, "TMP")
}

func TestPreflightHub(t *testing.T) {
	srv := hubServer(t)
	env := map[string]string{"HF_ENDPOINT": srv.URL}
	for _, tc := range []struct {
		name string
		inv  func(context.Context) ([]gpu.Device, error)
		args []string
	}{
		{"hub_text_no_nvml", noNVML, []string{"Qwen/Qwen3-0.6B"}},
		{"hub_text_h100", h100s(2), []string{"Qwen/Qwen3-0.6B"}},
		{"hub_json_no_nvml", noNVML, []string{"--json", "Qwen/Qwen3-0.6B"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := run(t, env, tc.inv, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, tc.name+".golden", []byte(stable(out, srv.URL)))
		})
	}
}

func TestPreflightJSONFields(t *testing.T) {
	srv := hubServer(t)
	out, err := run(t, map[string]string{"HF_ENDPOINT": srv.URL}, noNVML, "Qwen/Qwen3-0.6B", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"model_id", "revision", "architecture", "model_type", "params", "params_source", "bytes_per_param", "memory_bytes", "world_size", "remote_code", "fits"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	if m["params"].(float64) != 751632384 || m["params_source"] != "safetensors" || m["world_size"].(float64) != 1 {
		t.Errorf("got %v %v %v", m["params"], m["params_source"], m["world_size"])
	}
	fits := m["fits"].(map[string]any)
	if fits["ok"] != nil || !strings.Contains(fits["reason"].(string), "NVML not available") {
		t.Errorf("fits %v", fits)
	}
}

func TestPreflightNotFound(t *testing.T) {
	srv := hubServer(t)
	_, err := run(t, map[string]string{"HF_ENDPOINT": srv.URL}, noNVML, "acme/Nope-1B")
	if err == nil || !strings.Contains(err.Error(), "acme/Nope-1B was not found") {
		t.Errorf("got %v", err)
	}
}

// cache lays out a HuggingFace cache holding the given fixture as id.
func cache(t *testing.T, id, fixture string, files ...string) string {
	dir := t.TempDir()
	sha := "0123456789abcdef0123456789abcdef01234567"
	repo := filepath.Join(dir, "models--"+strings.ReplaceAll(id, "/", "--"))
	snap := filepath.Join(repo, "snapshots", sha)
	if err := os.MkdirAll(snap, 0o755); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(repo, "refs"), 0o755)
	os.WriteFile(filepath.Join(repo, "refs", "main"), []byte(sha+"\n"), 0o644)
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(snap, f), fixtures.Read(t, "hf", fixture, f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestPreflightOffline(t *testing.T) {
	dir := cache(t, "deepseek-ai/DeepSeek-V3", "deepseek-ai__DeepSeek-V3", "config.json")
	out, err := run(t, map[string]string{"HF_HUB_CACHE": dir, "HF_HUB_OFFLINE": "1"}, h100s(8), "deepseek-ai/DeepSeek-V3")
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "offline_deepseek.golden", []byte(stable(out, "")))
	// The Hub unreachable: the cache answers, with a warning.
	tiny := cache(t, "hf-internal-testing/tiny-random-PhiModel", "tiny-random-PhiModel", "config.json", "model.safetensors")
	out, err = run(t, map[string]string{"HF_HOME": filepath.Dir(tiny), "HF_HUB_CACHE": tiny, "HF_ENDPOINT": "http://127.0.0.1:1"}, noNVML, "--json", "hf-internal-testing/tiny-random-PhiModel")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal([]byte(out), &m)
	if m["params"].(float64) != 46282 || m["params_source"] != "safetensors" || m["source"] != "cache" || m["warnings"] == nil {
		t.Errorf("got %s", out)
	}
	// Neither Hub nor cache.
	_, err = run(t, map[string]string{"HF_HUB_CACHE": t.TempDir(), "HF_HUB_OFFLINE": "1"}, noNVML, "a/b")
	if err == nil || !strings.Contains(err.Error(), "not in the local HuggingFace cache") {
		t.Errorf("got %v", err)
	}
}

func TestPreflightConfigPath(t *testing.T) {
	p := fixtures.Path(t, "hf", "zai-org__GLM-5", "config.json")
	out, err := run(t, nil, h100s(8), "--config", p, "zai-org/GLM-5")
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "config_glm5.golden", []byte(stable(strings.ReplaceAll(out, filepath.Dir(p), "FIXTURE"), "")))
	// Unknown architecture: honest unknown, no failure.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"architectures":["RocketForCausalLM"],"model_type":"rocket","torch_dtype":"bfloat16"}`), 0o644)
	out, err = run(t, nil, noNVML, "--config", dir, "acme/Rocket-7B")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, `Parameters    unknown: cannot estimate parameters of RocketForCausalLM (model_type "rocket")`) || !strings.Contains(out, "GPUs needed   unknown") {
		t.Errorf("got\n%s", out)
	}
	// A broken config.json is an error naming it.
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"model_type": `), 0o644)
	_, err = run(t, nil, noNVML, "--config", dir, "acme/Rocket-7B")
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "config.json")) {
		t.Errorf("got %v", err)
	}
}

func TestPreflightArgs(t *testing.T) {
	for _, args := range [][]string{nil, {"a/b", "c/d"}, {"not-an-id"}, {"--bogus", "a/b"}} {
		if _, err := run(t, nil, noNVML, args...); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	if _, err := run(t, nil, noNVML, "--help"); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("--help: %v", err)
	}
}

func TestPreflightRepo(t *testing.T) {
	repo := smallCheckout(t)
	p := fixtures.Path(t, "hf", "mistralai__Mixtral-8x7B-v0.1", "config.json")
	out, err := run(t, nil, noNVML, "--repo", repo, "--config", p, "mistralai/Mixtral-8x7B-v0.1")
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "repo_mixtral.golden", []byte(stable(strings.ReplaceAll(out, filepath.Dir(p), "FIXTURE"), "")))
	// From the Hub, whose family search names members the registry lacks.
	srv := hubServer(t)
	out, err = run(t, map[string]string{"HF_ENDPOINT": srv.URL}, noNVML, "--repo", repo, "--json", "Qwen/Qwen3-0.6B")
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Survey struct {
			Members []struct{ Name, Status string }
		}
		Warnings []string
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, m := range res.Survey.Members {
		got[m.Name] = m.Status
	}
	if got["Qwen/Qwen3-0.6B-Base"] != "missing" || got["Qwen/Qwen3-0.6B"] != "registered" || got["Qwen/Qwen3-8B"] != "registered" || got["Qwen/Qwen3.5-0.8B"] != "" || len(res.Warnings) != 0 {
		t.Errorf("members %v, warnings %v", got, res.Warnings)
	}
}

func smallCheckout(t *testing.T) string {
	root := fixtures.Path(t, "trtllm")
	repo := t.TempDir()
	reg := filepath.Join(repo, "examples", "auto_deploy", "model_registry")
	os.MkdirAll(filepath.Join(reg, "configs"), 0o755)
	for _, f := range []string{"models.yaml", "configs/world_size_2.yaml", "configs/dashboard_default.yaml"} {
		b, err := os.ReadFile(filepath.Join(root, "examples", "auto_deploy", "model_registry", f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(reg, f), b, 0o644)
	}
	custom := filepath.Join(repo, "tensorrt_llm", "_torch", "auto_deploy", "models", "custom")
	os.MkdirAll(custom, 0o755)
	os.WriteFile(filepath.Join(custom, "modeling_mixtral.py"), []byte("AutoModelForCausalLMFactory.register_custom_model_cls(\"MixtralConfig\", MixtralForCausalLM)\n"), 0o644)
	return repo
}

// TestCommandThisMachine runs the real NVML inventory: on a machine without
// NVIDIA GPUs the preflight must say so, not fail.
func TestCommandThisMachine(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":4096,"intermediate_size":14336,"num_hidden_layers":32,"num_attention_heads":32,"num_key_value_heads":8,"vocab_size":128256,"torch_dtype":"bfloat16"}`), 0o644)
	var out bytes.Buffer
	r := &Runner{Stdout: &out, Stderr: &out, Getenv: func(string) string { return "" }, Inventory: gpu.Inventory}
	if err := r.Run(context.Background(), []string{"--config", dir, "meta-llama/Llama-3.1-8B"}); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", out.String())
	if !strings.Contains(out.String(), "Fits") || !strings.Contains(out.String(), "8.03B") {
		t.Errorf("got\n%s", out.String())
	}
}

func TestCheckAPI(t *testing.T) {
	srv := hubServer(t)
	r := &Runner{Getenv: env{"HF_ENDPOINT": srv.URL}.get}
	res, err := r.Check(context.Background(), "Qwen/Qwen3-0.6B", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.WorldSize != 1 || res.Params != 751632384 || res.Fits.OK != nil {
		t.Errorf("got %+v", res.Plan)
	}
	if _, err := (&Runner{}).Check(context.Background(), "bad id", Options{}); err == nil {
		t.Error("bad id: no error")
	}
}

type env map[string]string

func (e env) get(k string) string { return e[k] }

// TestPreflightRegisteredModel: a model the registry runs already is said to
// be registered, and the survey does not also say it needs a new modeling file.
func TestPreflightRegisteredModel(t *testing.T) {
	repo := smallCheckout(t)
	p := fixtures.Path(t, "hf", "Qwen__Qwen3-8B", "config.json")
	out, err := run(t, nil, noNVML, "--repo", repo, "--config", p, "Qwen/Qwen3-8B")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, text string
		want       bool
	}{
		{"registered", "Qwen/Qwen3-8B is registered already (examples/auto_deploy/model_registry/models.yaml:", true},
		{"needs none", "its registered entry needs none", true},
		{"new file", "new modeling file", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := strings.Contains(out, tc.text); got != tc.want {
				t.Errorf("contains %q = %v, want %v; output:\n%s", tc.text, got, tc.want, out)
			}
		})
	}
	out, err = run(t, nil, noNVML, "--repo", repo, "--config", p, "--json", "Qwen/Qwen3-8B")
	if err != nil {
		t.Fatal(err)
	}
	var res Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if res.Registered == nil || res.Registered.Name != "Qwen/Qwen3-8B" {
		t.Errorf("registered = %+v, want the Qwen/Qwen3-8B entry", res.Registered)
	}
}

// TestPreflightErrors: an error names the problem once (main adds the
// command's name), and under --json stdout holds one JSON object saying it.
func TestPreflightErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"two ids", []string{"--json", "a/b", "c/d"}, "want one model id, got 2 arguments"},
		{"bad id", []string{"--json", "not-an-id"}, `model id "not-an-id" has no '/'`},
		{"no checkout", []string{"--json", "--repo", filepath.Join(t.TempDir(), "none"), "--config", t.TempDir(), "a/b"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := run(t, nil, noNVML, tc.args...)
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), "preflight:") {
				t.Errorf("error %q names the command itself", err)
			}
			var got ErrorResult
			if jerr := json.Unmarshal([]byte(out), &got); jerr != nil {
				t.Fatalf("stdout is not JSON: %v\n%s", jerr, out)
			}
			if got.Error != err.Error() {
				t.Errorf("JSON error %q, returned error %q", got.Error, err)
			}
			if tc.want != "" && !strings.Contains(got.Error, tc.want) {
				t.Errorf("JSON error %q lacks %q", got.Error, tc.want)
			}
		})
	}
}
