package hub

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/nvidia/adbot/internal/fixtures"
)

func TestReadSafetensorsHeaderFixture(t *testing.T) {
	f, err := os.Open(fixtures.Path(t, "hf", "tiny-random-PhiModel", "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := ReadSafetensorsHeader(f)
	if err != nil {
		t.Fatal(err)
	}
	want := TensorCounts{Parameters: map[string]int64{"F32": 46282}, Tensors: 31}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("counts (-got +want):\n%s", diff)
	}
}

func header(json string) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, uint64(len(json)))
	b.WriteString(json)
	return b.Bytes()
}

func TestReadSafetensorsHeaderErrors(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "header length"},
		{"short length", []byte{1, 2}, "header length"},
		{"zero length", header(""), "out of range"},
		{"huge length", append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0}, '{'), "out of range"},
		{"truncated header", header(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`)[:20], "read safetensors header"},
		{"not JSON", header(`{nope`), "decode safetensors header"},
		{"no shape", header(`{"a":{"dtype":"F32"}}`), "no dtype or shape"},
		{"negative dim", header(`{"a":{"dtype":"F32","shape":[-1]}}`), "negative"},
		{"overflow", header(`{"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296]}}`), "too large"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadSafetensorsHeader(bytes.NewReader(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func FuzzParseSafetensorsHeader(f *testing.F) {
	f.Add([]byte(`{"__metadata__":{"format":"pt"},"w":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,12]}}`))
	f.Add([]byte(`{"w":{"dtype":"F32","shape":[]}}`))
	f.Add([]byte(`{"w":{"dtype":"F32","shape":[9223372036854775807,2]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseSafetensorsHeader(b)
		if err != nil {
			return
		}
		for k, v := range c.Parameters {
			if v < 0 {
				t.Fatalf("negative count %d for %s", v, k)
			}
		}
	})
}

func TestPythonJSON(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"a": [0.0, Infinity]}`, `{"a": [0.0, null]}`},
		{`{"a": -Infinity, "b": NaN}`, `{"a": null, "b": null}`},
		{`{"s": "NaN and Infinity \" Infinity"}`, `{"s": "NaN and Infinity \" Infinity"}`},
		{`{"x": 1}`, `{"x": 1}`},
	}
	for _, tc := range tests {
		if got := string(PythonJSON([]byte(tc.in))); got != tc.want {
			t.Errorf("PythonJSON(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func FuzzPythonJSON(f *testing.F) {
	f.Add([]byte(`{"a": [0.0, Infinity, -Infinity, NaN], "s": "Infinity\\\""}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		out := PythonJSON(b)
		if !bytes.Contains(b, []byte("NaN")) && !bytes.Contains(b, []byte("Infinity")) && !bytes.Equal(out, b) {
			t.Fatal("changed input without NaN/Infinity")
		}
	})
}

func TestCacheDir(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"HF_HUB_CACHE": "/c", "HF_HOME": "/h"}, "/c"},
		{map[string]string{"HF_HOME": "/h", "HOME": "/home/u"}, "/h/hub"},
		{map[string]string{"XDG_CACHE_HOME": "/x", "HOME": "/home/u"}, "/x/huggingface/hub"},
		{map[string]string{"HOME": "/home/u"}, "/home/u/.cache/huggingface/hub"},
		{map[string]string{}, ""},
	}
	for _, tc := range tests {
		if got := CacheDir(func(k string) string { return tc.env[k] }); got != tc.want {
			t.Errorf("CacheDir(%v) = %q, want %q", tc.env, got, tc.want)
		}
	}
}

// makeCache lays out a HuggingFace cache holding the tiny Phi fixture as
// org/tiny-phi, the way huggingface_hub does (blobs, refs/main, snapshots).
func makeCache(t *testing.T, withWeights bool) (dir, sha string) {
	t.Helper()
	dir = t.TempDir()
	sha = "0123456789abcdef0123456789abcdef01234567"
	repo := filepath.Join(dir, "models--org--tiny-phi")
	snap := filepath.Join(repo, "snapshots", sha)
	for _, d := range []string{filepath.Join(repo, "refs"), filepath.Join(repo, "blobs"), snap} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(repo, "refs", "main"), []byte(sha), 0o644); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"config.json": fixtures.Read(t, "hf", "tiny-random-PhiModel", "config.json")}
	if withWeights {
		files["model.safetensors"] = fixtures.Read(t, "hf", "tiny-random-PhiModel", "model.safetensors")
	}
	for name, b := range files {
		blob := filepath.Join(repo, "blobs", name+".blob")
		if err := os.WriteFile(blob, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join("..", "..", "blobs", name+".blob"), filepath.Join(snap, name)); err != nil {
			t.Fatal(err)
		}
	}
	return dir, sha
}

func TestCachedSnapshot(t *testing.T) {
	dir, sha := makeCache(t, true)
	s, err := CachedSnapshot(dir, "org/tiny-phi", "")
	if err != nil {
		t.Fatal(err)
	}
	if s.Revision != sha {
		t.Errorf("revision %q, want %q", s.Revision, sha)
	}
	m, err := s.Model()
	if err != nil {
		t.Fatal(err)
	}
	if m.Architecture() != "PhiModel" || m.Config.ModelType != "phi" || m.SHA != sha || m.ID != "org/tiny-phi" {
		t.Errorf("model %+v", m)
	}
	if m.Tensors == nil || m.Tensors.Total != 46282 {
		t.Errorf("tensors %+v, want 46282 from the header", m.Tensors)
	}
	if len(m.Siblings) != 2 {
		t.Errorf("siblings %+v", m.Siblings)
	}
	// By sha too.
	if _, err := CachedSnapshot(dir, "org/tiny-phi", sha); err != nil {
		t.Error(err)
	}
}

func TestCachedSnapshotWithoutWeights(t *testing.T) {
	dir, _ := makeCache(t, false)
	s, err := CachedSnapshot(dir, "org/tiny-phi", "main")
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.Model()
	if err != nil {
		t.Fatal(err)
	}
	if m.Tensors != nil {
		t.Errorf("tensors %+v, want none without weights", m.Tensors)
	}
}

func TestCachedSnapshotMissing(t *testing.T) {
	dir, _ := makeCache(t, false)
	for _, tc := range []struct{ id, rev string }{{"org/other", ""}, {"org/tiny-phi", "v2"}, {"org/tiny-phi", strings.Repeat("a", 40)}} {
		_, err := CachedSnapshot(dir, tc.id, tc.rev)
		if !errors.Is(err, ErrNotCached) {
			t.Errorf("%s@%s: got %v, want ErrNotCached", tc.id, tc.rev, err)
		}
	}
	if _, err := CachedSnapshot("", "org/tiny-phi", ""); !errors.Is(err, ErrNotCached) {
		t.Errorf("no cache dir: got %v", err)
	}
	if _, err := CachedSnapshot(dir, "org/tiny-phi", "../x"); err == nil || errors.Is(err, ErrNotCached) {
		t.Errorf("revision with ..: got %v", err)
	}
}

func TestConfigPath(t *testing.T) {
	p := fixtures.Path(t, "hf", "Qwen__Qwen3-8B", "config.json")
	for _, path := range []string{p, filepath.Dir(p)} {
		s, err := ConfigPath(path, "Qwen/Qwen3-8B")
		if err != nil {
			t.Fatal(err)
		}
		m, err := s.Model()
		if err != nil {
			t.Fatal(err)
		}
		if m.Architecture() != "Qwen3ForCausalLM" {
			t.Errorf("%s: architecture %q", path, m.Architecture())
		}
	}
	if _, err := ConfigPath(filepath.Join(t.TempDir(), "nope.json"), ""); err == nil {
		t.Error("missing path: no error")
	}
}

func TestSnapshotBadConfig(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"model_type": "llama",`), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := ConfigPath(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Model()
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "config.json")) {
		t.Errorf("got %v, want an error naming the file", err)
	}
}

func TestClientFile(t *testing.T) {
	cfg := fixtures.Read(t, "hf", "Qwen__Qwen3-0.6B", "config.json")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/Qwen/Qwen3-0.6B/resolve/main/config.json":
			if r.Header.Get("Authorization") != "Bearer tok" {
				w.WriteHeader(401)
				return
			}
			w.Write(cfg)
		default:
			w.Header().Set("X-Error-Code", "EntryNotFound")
			w.WriteHeader(404)
		}
	}))
	defer srv.Close()
	c := &Client{Endpoint: srv.URL, Token: "tok"}
	got, err := c.File(context.Background(), "Qwen/Qwen3-0.6B", "", "config.json")
	if err != nil || !bytes.Equal(got, cfg) {
		t.Fatalf("File = %d bytes, %v", len(got), err)
	}
	_, err = c.File(context.Background(), "Qwen/Qwen3-0.6B", "", "generation_config.json")
	var he *Error
	if !errors.As(err, &he) || he.Reason != ReasonEntryNotFound {
		t.Errorf("missing file: got %v", err)
	}
	if _, err := c.File(context.Background(), "Qwen/Qwen3-0.6B", "", "../x"); err == nil {
		t.Error("path with ..: no error")
	}
}

func TestClientSearch(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.URL.Path != "/api/models" || q.Get("author") != "Qwen" || q.Get("search") != "Qwen3" || q.Get("limit") != "200" {
			w.WriteHeader(400)
			return
		}
		w.Write([]byte(`[{"id":"Qwen/Qwen3-8B"},{"id":"Qwen/Qwen3-0.6B"},{"id":"bad id"}]`))
	}))
	defer srv.Close()
	c := &Client{Endpoint: srv.URL}
	got, err := c.Search(context.Background(), "Qwen", "Qwen3", 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, []string{"Qwen/Qwen3-8B", "Qwen/Qwen3-0.6B"}); diff != "" {
		t.Errorf("(-got +want):\n%s", diff)
	}
	if _, err := c.Search(context.Background(), "Qwen", "x", 0); err == nil {
		t.Error("400: no error")
	}
	if _, err := c.Search(context.Background(), "a/b", "x", 0); err == nil {
		t.Error("bad author: no error")
	}
}

func TestSnapshotShardedTensors(t *testing.T) {
	dir := t.TempDir()
	st := fixtures.Read(t, "hf", "tiny-random-PhiModel", "model.safetensors")
	os.WriteFile(filepath.Join(dir, "config.json"), fixtures.Read(t, "hf", "tiny-random-PhiModel", "config.json"), 0o644)
	os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), []byte(`{"metadata":{"total_size":1},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}}`), 0o644)
	os.WriteFile(filepath.Join(dir, "model-00001-of-00002.safetensors"), st, 0o644)
	s := &Snapshot{Dir: dir}
	tc, err := s.Tensors()
	if err != nil || tc != nil {
		t.Fatalf("one shard of two: %+v, %v; want nothing", tc, err)
	}
	os.WriteFile(filepath.Join(dir, "model-00002-of-00002.safetensors"), st, 0o644)
	tc, err = s.Tensors()
	if err != nil || tc == nil || tc.Total() != 2*46282 || tc.Tensors != 62 {
		t.Fatalf("both shards: %+v, %v", tc, err)
	}
	os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), []byte(`{"weight_map":`), 0o644)
	if _, err := s.Tensors(); err == nil || !strings.Contains(err.Error(), "model.safetensors.index.json") {
		t.Errorf("broken index: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), []byte(`{"weight_map":{"a":"model-00002-of-00002.safetensors"}}`), 0o644)
	os.WriteFile(filepath.Join(dir, "model-00002-of-00002.safetensors"), st[:20], 0o644)
	if _, err := s.Tensors(); err == nil || !strings.Contains(err.Error(), "model-00002-of-00002.safetensors") {
		t.Errorf("truncated shard: %v", err)
	}
}
