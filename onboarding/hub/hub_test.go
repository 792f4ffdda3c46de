package hub

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nvidia/adbot/internal/fixtures"
)

func TestValidateModelID(t *testing.T) {
	tests := []struct {
		id      string
		wantErr string
	}{
		{"Qwen/Qwen3-0.6B", ""},
		{"meta-llama/Llama-3.1-8B", ""},
		{"a/b_c.d-e", ""},
		{"", "empty"},
		{"Qwen3", "no '/'"},
		{"a/b/c", "more than one '/'"},
		{"/name", "organization is empty"},
		{"org/", "model name is empty"},
		{"org/na..me", `contains ".."`},
		{"org/-x", "starts with"},
		{"org/x.", "ends with"},
		{"org/a b", "position 2"},
		{"org/a;rm -rf", "';'"},
		{"org/$(id)", "'$'"},
		{"org/" + strings.Repeat("x", 97), "97 characters"},
		{"org/" + strings.Repeat("x", 96), ""},
		{"org/naïve", "'ï'"},
	}
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			err := ValidateModelID(tc.id)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("ValidateModelID(%q) = %v, want nil", tc.id, err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("ValidateModelID(%q) = %v, want error containing %q", tc.id, err, tc.wantErr)
			}
		})
	}
}

func FuzzValidateModelID(f *testing.F) {
	for _, s := range []string{"Qwen/Qwen3-0.6B", "a/../b", "x", "a/b/c", "-a/b", "a/b\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if ValidateModelID(id) != nil {
			return
		}
		// Anything accepted must be safe in a path and a branch name.
		if strings.Count(id, "/") != 1 || strings.Contains(id, "..") || len(id) > 2*MaxNamePart+1 {
			t.Fatalf("accepted unsafe id %q", id)
		}
		for _, r := range id {
			if r <= ' ' || strings.ContainsRune("$`;&|<>\\'\"*?~^:[]{}()!#%", r) {
				t.Fatalf("accepted id %q with %q", id, r)
			}
		}
	})
}

func TestParseModelFixture(t *testing.T) {
	m, err := ParseModel(fixtures.Read(t, "hf", "Qwen__Qwen3-0.6B", "api.json"))
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != "Qwen/Qwen3-0.6B" || m.SHA != "c1899de289a04d12100db370d81485cdf75e47ca" {
		t.Errorf("id, sha = %q, %q", m.ID, m.SHA)
	}
	if m.Architecture() != "Qwen3ForCausalLM" || m.Config.ModelType != "qwen3" {
		t.Errorf("architecture, model_type = %q, %q", m.Architecture(), m.Config.ModelType)
	}
	if m.Tensors == nil || m.Tensors.Total != 751632384 {
		t.Errorf("safetensors = %+v, want total 751632384", m.Tensors)
	}
	if m.RemoteCode() || m.Gated.IsGated() || m.Private {
		t.Errorf("remote code %v, gated %v, private %v: want all false", m.RemoteCode(), m.Gated.IsGated(), m.Private)
	}
}

// TestClientModelTooLarge: an answer over the limit is refused saying so, not
// cut short and reported as broken JSON.
func TestClientModelTooLarge(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"id":"big/model","siblings":[`))
		entry := []byte(`{"rfilename":"shard.safetensors"},`)
		for n := 0; n <= maxBody/len(entry); n++ {
			w.Write(entry)
		}
		w.Write([]byte(`{"rfilename":"last"}]}`))
	}))
	defer srv.Close()
	c := &Client{Endpoint: srv.URL}
	_, err := c.Model(context.Background(), "big/model", "")
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Model of a %d-byte-plus answer: %v, want an error saying it is too large", maxBody, err)
	}
}

func TestClientModel(t *testing.T) {
	api := fixtures.Read(t, "hf", "Qwen__Qwen3-0.6B", "api.json")
	var gotAuth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth = r.Header.Get("Authorization")
		switch r.URL.Path {
		case "/api/models/Qwen/Qwen3-0.6B", "/api/models/Qwen/Qwen3-0.6B/revision/main":
			w.Write(api)
		case "/api/models/gated/model":
			w.Header().Set("X-Error-Code", "GatedRepo")
			w.WriteHeader(401)
			w.Write([]byte(`{"error":"Access to model gated/model is restricted."}`))
		case "/api/models/busy/model":
			w.WriteHeader(503)
		default:
			w.Header().Set("X-Error-Code", "RepoNotFound")
			w.WriteHeader(401)
			w.Write([]byte(`{"error":"Repository not found"}`))
		}
	}))
	defer srv.Close()
	c := &Client{Endpoint: srv.URL + "/", Token: "test-token"}
	ctx := context.Background()
	m, err := c.Model(ctx, "Qwen/Qwen3-0.6B", "main")
	if err != nil || m.SHA == "" {
		t.Fatalf("Model = %v, %v", m, err)
	}
	if gotAuth != "Bearer test-token" {
		t.Errorf("Authorization = %q", gotAuth)
	}
	tests := []struct {
		id        string
		reason    Reason
		temporary bool
		says      string
	}{
		{"gated/model", ReasonGated, false, "is gated"},
		{"missing/model", ReasonNotFound, false, "not found"},
		{"busy/model", "", true, "503"},
	}
	for _, tc := range tests {
		_, err := c.Model(ctx, tc.id, "")
		var he *Error
		if !errors.As(err, &he) {
			t.Fatalf("Model(%s) error = %v, want *Error", tc.id, err)
		}
		if he.Reason != tc.reason || he.Temporary() != tc.temporary || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("Model(%s) = %+v (%q), want reason %q temporary %v saying %q", tc.id, he, err, tc.reason, tc.temporary, tc.says)
		}
	}
	if _, err := c.Model(ctx, "../etc/passwd", ""); err == nil {
		t.Error("Model accepted an invalid id")
	}
}
