package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v62/github"
	"github.com/rs/zerolog"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/bus/bustest"
	"github.com/nvidia/adbot/internal/fakegithub"
)

func TestTokenBroker(t *testing.T) {
	gh := fakegithub.New(t)
	cfg := testConfig(t, gh.URL())
	var logs syncBuffer
	s, _ := startServer(t, cfg, func(s *Server) { s.noWorker = true }, WithLogger(zerolog.New(&logs).Level(zerolog.DebugLevel)))
	ctx := context.Background()
	job := bus.JobKey("NVIDIA", "TensorRT-LLM", 7)
	if _, err := bus.CreateJob(ctx, s.res.Jobs, &bus.Job{Key: job, Owner: "NVIDIA", Repo: "TensorRT-LLM", Issue: 7, InstallationID: 42, Status: bus.StatusRunning}); err != nil {
		t.Fatal(err)
	}
	proof, proofHash := bus.NewLeaseProof()
	lease, _ := json.Marshal(bus.Lease{Runner: "gpu-host-1", Cycle: 1, GPUs: []int{0}, Renewed: time.Now(), ProofSHA256: proofHash})
	if _, err := s.res.Leases.Put(ctx, job, lease); err != nil {
		t.Fatal(err)
	}
	unleased := bus.JobKey("NVIDIA", "TensorRT-LLM", 8)
	if _, err := bus.CreateJob(ctx, s.res.Jobs, &bus.Job{Key: unleased, Owner: "NVIDIA", Repo: "TensorRT-LLM", Issue: 8, InstallationID: 42}); err != nil {
		t.Fatal(err)
	}
	write := map[string]string{"contents": "write", "pull_requests": "write"}

	tests := []struct {
		name      string
		req       bus.TokenRequest
		wantErr   string // substring of the refusal; "" means granted
		wantPerms map[string]string
	}{
		{"lease holder", bus.TokenRequest{JobKey: job, Runner: "gpu-host-1", Proof: proof, Permissions: write}, "", write},
		{"lease holder, read checks", bus.TokenRequest{JobKey: job, Runner: "gpu-host-1", Proof: proof, Permissions: map[string]string{"checks": "read"}}, "", map[string]string{"checks": "read"}},
		{"holder's name without the proof", bus.TokenRequest{JobKey: job, Runner: "gpu-host-1", Permissions: write}, "did not prove", nil},
		{"holder's name, the lease's hash as proof", bus.TokenRequest{JobKey: job, Runner: "gpu-host-1", Proof: proofHash, Permissions: write}, "did not prove", nil},
		{"another runner", bus.TokenRequest{JobKey: job, Runner: "gpu-host-2", Permissions: write}, "does not hold the lease", nil},
		{"no lease", bus.TokenRequest{JobKey: unleased, Runner: "gpu-host-1", Permissions: write}, "nobody holds the lease", nil},
		{"no job", bus.TokenRequest{JobKey: "NVIDIA.TensorRT-LLM.9", Runner: "gpu-host-1", Permissions: write}, "no job", nil},
		{"no runner", bus.TokenRequest{JobKey: job, Permissions: write}, "names no job or no runner", nil},
		{"administration", bus.TokenRequest{JobKey: job, Runner: "gpu-host-1", Permissions: map[string]string{"administration": "write"}}, "not grantable", nil},
		{"admin level", bus.TokenRequest{JobKey: job, Runner: "gpu-host-1", Permissions: map[string]string{"contents": "admin"}}, "not read or write", nil},
		{"nothing asked", bus.TokenRequest{JobKey: job, Runner: "gpu-host-1"}, "no permissions", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(gh.TokenRequests())
			b, _ := json.Marshal(tc.req)
			msg, err := s.nc.Request(bus.TokenSubject, b, 10*time.Second)
			if err != nil {
				t.Fatalf("request: %v", err)
			}
			var reply bus.TokenReply
			if err := json.Unmarshal(msg.Data, &reply); err != nil {
				t.Fatalf("reply %q: %v", msg.Data, err)
			}
			minted := gh.TokenRequests()[before:]
			if tc.wantErr != "" {
				if reply.Token != "" || !strings.Contains(reply.Error, tc.wantErr) {
					t.Errorf("reply = %+v, want a refusal containing %q", reply, tc.wantErr)
				}
				if len(minted) != 0 {
					t.Errorf("a refused request minted %d tokens on GitHub", len(minted))
				}
				return
			}
			if reply.Error != "" || reply.Token == "" || time.Until(reply.Expires) < 50*time.Minute {
				t.Fatalf("reply = %+v, want a token expiring in about an hour", reply)
			}
			if len(minted) != 1 {
				t.Fatalf("minted %d tokens, want 1", len(minted))
			}
			got := minted[0]
			if got.Token != reply.Token || got.InstallationID != 42 {
				t.Errorf("token %q for installation %d, want the minted one for 42", reply.Token, got.InstallationID)
			}
			if diff := cmp.Diff(got.Repositories, []string{"TensorRT-LLM"}); diff != "" {
				t.Errorf("token repositories (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(got.Permissions, tc.wantPerms); diff != "" {
				t.Errorf("token permissions (-got +want):\n%s", diff)
			}
		})
	}
	// Tokens never reach a log; refusals and grants are counted.
	for _, tr := range gh.TokenRequests() {
		if strings.Contains(logs.String(), tr.Token) {
			t.Errorf("token %s... appears in the server log", tr.Token[:8])
		}
	}
	if !strings.Contains(logs.String(), "installation token granted") {
		t.Error("grants are not logged at all")
	}
	_, metrics := getMetrics(t, s)
	for _, want := range []string{`adbot_token_requests_total{result="granted"} 2`, `adbot_token_requests_total{result="refused"} 9`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	// Malformed requests are refused, not dropped.
	msg, err := s.nc.Request(bus.TokenSubject, []byte("not json"), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(msg.Data), "does not decode") {
		t.Errorf("reply to garbage = %s", msg.Data)
	}
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines to log into.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func FuzzTokenPermissions(f *testing.F) {
	f.Add("contents", "write", "issues", "read")
	f.Add("administration", "write", "", "")
	f.Add("checks", "admin", "pull_requests", "WRITE")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		asked := map[string]string{k1: v1, k2: v2}
		p, err := tokenPermissions(asked)
		if err != nil {
			return
		}
		for k, v := range asked {
			if !grantable[k] || (v != "read" && v != "write") {
				t.Fatalf("granted %s:%s", k, v)
			}
		}
		for _, got := range []*string{p.Contents, p.PullRequests, p.Issues, p.Checks} {
			if got != nil && *got != "read" && *got != "write" {
				t.Fatalf("granted level %q", *got)
			}
		}
		if p.Administration != nil || p.Workflows != nil || p.Secrets != nil {
			t.Fatalf("granted a permission outside the allow-list: %+v", p)
		}
	})
}

// fakeApps mints tokens without GitHub.
type fakeApps struct{ calls int }

func (f *fakeApps) CreateInstallationToken(ctx context.Context, id int64, opts *github.InstallationTokenOptions) (*github.InstallationToken, *github.Response, error) {
	f.calls++
	return &github.InstallationToken{Token: github.String("ghs_fake")}, nil, nil
}

// FuzzTokenRequest feeds the broker arbitrary request bytes: it grants only
// the lease holder of an existing job, with allowed permissions, and never panics.
func FuzzTokenRequest(f *testing.F) {
	const proof = "fuzz-proof"
	f.Add([]byte(`{"job":"o.r.1","runner":"r1","proof":"fuzz-proof","permissions":{"contents":"write"}}`))
	f.Add([]byte(`{"job":"o.r.1","runner":"r1","permissions":{"contents":"write"}}`))
	f.Add([]byte(`{"job":"o.r.1","runner":"r2","proof":"fuzz-proof","permissions":{"contents":"write"}}`))
	f.Add([]byte(`{"job":"o.r.2","runner":"r1","permissions":{"issues":"read"}}`))
	f.Add([]byte(`{"job":"o.r.1","runner":"r1","permissions":{"administration":"write"}}`))
	f.Add([]byte(`{"job":"","runner":"","permissions":null}`))
	f.Add([]byte(`not json`))
	_, _, res := bustest.Start(f)
	ctx := context.Background()
	if _, err := bus.CreateJob(ctx, res.Jobs, &bus.Job{Key: "o.r.1", Owner: "o", Repo: "r", Issue: 1, InstallationID: 3}); err != nil {
		f.Fatal(err)
	}
	sum := sha256.Sum256([]byte(proof))
	lease, _ := json.Marshal(bus.Lease{Runner: "r1", ProofSHA256: hex.EncodeToString(sum[:])})
	if _, err := res.Leases.Put(ctx, "o.r.1", lease); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		apps := &fakeApps{}
		b := &tokenBroker{res: res, apps: func() (appTokenClient, error) { return apps, nil }}
		reply, req, err := b.answer(ctx, data)
		if err != nil {
			if reply.Token != "" || reply.Error == "" || apps.calls != 0 {
				t.Fatalf("refusal %v came with token %q, error %q, %d mints", err, reply.Token, reply.Error, apps.calls)
			}
			return
		}
		if req.JobKey != "o.r.1" || req.Runner != "r1" || req.Proof != proof || reply.Token == "" {
			t.Fatalf("granted %+v to %+v", reply, req)
		}
		if _, err := tokenPermissions(req.Permissions); err != nil {
			t.Fatalf("granted disallowed permissions %v", req.Permissions)
		}
	})
}
