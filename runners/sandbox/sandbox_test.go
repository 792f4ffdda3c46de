package sandbox_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nvidia/adbot/runners/sandbox"
)

func TestMain(m *testing.M) {
	if os.Getenv(standinEnv) != "" {
		standin(os.Args[1:])
	}
	os.Exit(m.Run())
}

// requireBwrap skips where this machine cannot build a sandbox, unless CI
// is set: CI installs bubblewrap and must run these tests.
func requireBwrap(t *testing.T) {
	t.Helper()
	if err := sandbox.Probe(context.Background(), "bwrap"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI must build sandboxes: %v", err)
		}
		t.Skipf("no sandbox on this machine (CI unset): %v", err)
	}
}

func secret(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b)
}

// host is a runner's files as the tests lay them out: a data dir holding
// this job's worktree, another job's and the runner's state; NATS
// credentials; a read-only folder (the HF cache) that also holds an App key
// file to be hidden; a fake /dev with four GPUs.
type host struct {
	root, data, worktree, other, scratch, ro, creds, appKey, dev, outside string
	secrets                                                               map[string]string
}

func newHost(t *testing.T) *host {
	t.Helper()
	root := t.TempDir()
	h := &host{
		root:     root,
		data:     filepath.Join(root, "data"),
		worktree: filepath.Join(root, "data", "worktrees", "job-1"),
		other:    filepath.Join(root, "data", "worktrees", "job-2"),
		scratch:  filepath.Join(root, "data", "scratch", "job-1"),
		ro:       filepath.Join(root, "hf"),
		creds:    filepath.Join(root, "etc", "nats.creds"),
		appKey:   filepath.Join(root, "hf", "app.pem"),
		dev:      filepath.Join(root, "dev"),
		outside:  filepath.Join(root, "outside.txt"),
		secrets: map[string]string{
			"GITHUB_TOKEN":      secret(t, "ghs_"),
			"ADBOT_GIT_TOKEN":   secret(t, "ghs_"),
			"HF_TOKEN":          secret(t, "hf_"),
			"ANTHROPIC_API_KEY": secret(t, "sk-ant-"),
		},
	}
	files := map[string]string{
		filepath.Join(h.worktree, "README.md"):      "worktree\n",
		filepath.Join(h.other, "secret.txt"):        "another job\n",
		filepath.Join(h.data, "runner.json"):        "runner state\n",
		filepath.Join(h.ro, "model", "config.json"): "{}\n",
		h.creds:                      secret(t, "nats-creds-") + "\n",
		h.appKey:                     secret(t, "app-key-") + "\n",
		filepath.Join(h.ro, "token"): secret(t, "hf_") + "\n",
	}
	for _, n := range []string{"nvidia0", "nvidia1", "nvidia2", "nvidia3", "nvidiactl", "nvidia-uvm"} {
		files[filepath.Join(h.dev, n)] = ""
	}
	for p, s := range files {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(h.scratch, 0o755); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *host) spec(t *testing.T, gpus ...int) sandbox.Spec {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return sandbox.Spec{
		Worktree: h.worktree, Scratch: h.scratch,
		// The stand-in is this test binary, bound read-only.
		ReadOnly: []string{h.ro, exe},
		Hidden:   []string{h.data, h.creds, h.appKey},
		GPUs:     gpus, DevDir: h.dev,
	}
}

// env is what the runner's minimal environment would hold, secrets included.
func (h *host) env() []string {
	env := []string{"PATH=/usr/bin:/bin", standinEnv + "=1"}
	for k, v := range h.secrets {
		env = append(env, k+"="+v)
	}
	return env
}

// run runs the stand-in with ops inside p (or unconfined if p is nil, the
// control that shows each attempt can succeed) and returns its attempts by "op=arg".
func run(t *testing.T, h *host, p *sandbox.Policy, ops ...string) map[string]attempt {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	argv, env := append([]string{exe}, ops...), h.env()
	if p != nil {
		if err := p.Prepare(); err != nil {
			t.Fatal(err)
		}
		if argv, err = p.Command("bwrap", argv, ""); err != nil {
			t.Fatal(err)
		}
		env = p.Environ(env)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("stand-in: %v\nargv: %q\nstderr: %s", err, argv, stderr.String())
	}
	got := map[string]attempt{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		var a attempt
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			t.Fatalf("stand-in output %q: %v", sc.Text(), err)
		}
		got[a.Op+"="+a.Arg] = a
	}
	if len(got) != len(ops) {
		t.Fatalf("stand-in answered %d of %d attempts:\n%s\nstderr: %s", len(got), len(ops), out, stderr.String())
	}
	return got
}

// oks maps each attempt to whether it succeeded.
func oks(got map[string]attempt) map[string]bool {
	m := map[string]bool{}
	for k, a := range got {
		m[k] = a.OK
	}
	return m
}

func TestFiles(t *testing.T) {
	requireBwrap(t)
	h := newHost(t)
	want := map[string]bool{
		"write=" + filepath.Join(h.worktree, "new.py"):          true,
		"write=" + filepath.Join(h.scratch, "tmp", "cache.bin"): true,
		"read=" + filepath.Join(h.ro, "model", "config.json"):   true,
		"write=" + filepath.Join(h.ro, "model", "config.json"):  false,
		"write=" + h.outside:                           false,
		"write=" + filepath.Join(h.data, "new.txt"):    false,
		"write=/etc/adbot-was-here":                    false,
		"write=/usr/adbot-was-here":                    false,
		"read=" + filepath.Join(h.data, "runner.json"): false,
		"read=" + filepath.Join(h.other, "secret.txt"): false,
		"read=" + h.creds:                              false,
		"read=" + h.appKey:                             false,
		"read=" + filepath.Join(h.ro, "token"):         false,
	}
	var ops []string
	for k := range want {
		ops = append(ops, k)
	}
	for _, class := range []struct {
		name string
		p    *sandbox.Policy
	}{
		{"agent", sandbox.Agent(h.spec(t), "", "")},
		{"test", sandbox.Test(h.spec(t))},
		{"e2e", sandbox.E2E(h.spec(t))},
		// The whole host folder shown read-only, as a system path: the
		// hidden paths are masked, the data dir emptied around the worktree.
		{"under a system folder", func() *sandbox.Policy {
			p := sandbox.Test(h.spec(t))
			p.System = append(slices.Clone(sandbox.DefaultSystem), h.root)
			return p
		}()},
	} {
		t.Run(class.name, func(t *testing.T) {
			got := run(t, h, class.p, append(ops, "list="+filepath.Join(h.data, "worktrees"))...)
			if a := got["read="+h.appKey]; a.Out != "" {
				t.Errorf("App key read as %q", a.Out)
			}
			if a := got["list="+filepath.Join(h.data, "worktrees")]; a.Out != "job-1" {
				t.Errorf("worktrees seen: %q (%s), want only job-1", a.Out, a.Err)
			}
			delete(got, "list="+filepath.Join(h.data, "worktrees"))
			if diff := cmp.Diff(oks(got), want); diff != "" {
				t.Errorf("attempts (-got +want):\n%s\n%v", diff, got)
			}
			if _, err := os.Stat(h.outside); err == nil {
				t.Errorf("%s was written on the host", h.outside)
			}
			if b, err := os.ReadFile(filepath.Join(h.worktree, "new.py")); err != nil || !strings.Contains(string(b), "inside") {
				t.Errorf("worktree write did not reach the host: %q, %v", b, err)
			}
		})
	}
	// The control: unconfined, every read succeeds, so the checks above can fail.
	t.Run("unconfined", func(t *testing.T) {
		got := run(t, h, nil, "read="+h.appKey, "read="+h.creds, "read="+filepath.Join(h.other, "secret.txt"), "write="+h.outside)
		for k, a := range got {
			if !a.OK {
				t.Errorf("%s failed unconfined: %s", k, a.Err)
			}
		}
	})
}

func TestGPUs(t *testing.T) {
	requireBwrap(t)
	h := newHost(t)
	for _, tc := range []struct {
		name, nodes, cvd string
		gpus             []int
	}{
		{"two of four", "nvidia-uvm nvidia1 nvidia3 nvidiactl", "0,1", []int{1, 3}},
		{"one", "nvidia-uvm nvidia2 nvidiactl", "0", []int{2}},
		{"none", "", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := sandbox.E2E(h.spec(t, tc.gpus...))
			got := run(t, h, p, "list=/dev", "env=CUDA_VISIBLE_DEVICES", "mknod=/dev/nvidia0", "mknod="+filepath.Join(h.scratch, "nvidia0"))
			var nodes []string
			for n := range strings.FieldsSeq(got["list=/dev"].Out) {
				if strings.HasPrefix(n, "nvidia") {
					nodes = append(nodes, n)
				}
			}
			if diff := cmp.Diff(strings.Join(nodes, " "), tc.nodes); diff != "" {
				t.Errorf("GPU nodes (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(got["env=CUDA_VISIBLE_DEVICES"].Out, tc.cvd); diff != "" {
				t.Errorf("CUDA_VISIBLE_DEVICES (-got +want):\n%s", diff)
			}
			for _, k := range []string{"mknod=/dev/nvidia0", "mknod=" + filepath.Join(h.scratch, "nvidia0")} {
				if got[k].OK {
					t.Errorf("%s: made a device node inside the sandbox", k)
				}
			}
		})
	}
	t.Run("missing node", func(t *testing.T) {
		if _, err := sandbox.E2E(h.spec(t, 7)).Command("bwrap", []string{"true"}, ""); err == nil || !strings.Contains(err.Error(), "gpu 7") {
			t.Errorf("lease of a GPU without a node: err = %v, want one naming gpu 7", err)
		}
	})
}

// refusals collects what the proxy refused.
type refusals struct {
	mu  sync.Mutex
	got []sandbox.Refusal
}

func (r *refusals) add(x sandbox.Refusal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, x)
}

func TestNetwork(t *testing.T) {
	requireBwrap(t)
	h := newHost(t)
	hello := func(body string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, body) })
	}
	allowed := httptest.NewServer(hello("model api"))
	defer allowed.Close()
	allowedTLS := httptest.NewTLSServer(hello("model api over tls"))
	defer allowedTLS.Close()
	other := httptest.NewServer(hello("elsewhere"))
	defer other.Close()
	hostOf := func(s *httptest.Server) string {
		return strings.TrimPrefix(strings.TrimPrefix(s.URL, "https://"), "http://")
	}

	rules, err := sandbox.ParseRules(hostOf(allowed) + "," + hostOf(allowedTLS))
	if err != nil {
		t.Fatal(err)
	}
	var refused refusals
	sock := filepath.Join(h.root, "egress.sock")
	px, err := sandbox.StartProxy(sock, rules, refused.add)
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()

	t.Run("agent", func(t *testing.T) {
		p := sandbox.Agent(h.spec(t), px.Socket(), "")
		got := run(t, h, p,
			"get="+allowed.URL, "gettls="+allowedTLS.URL, "get="+other.URL,
			"dial="+hostOf(allowed), "socket=1.1.1.1:53",
			"env=ANTHROPIC_API_KEY", "env=GITHUB_TOKEN", "env=ADBOT_GIT_TOKEN", "env=HF_TOKEN")
		want := map[string]bool{
			"get=" + allowed.URL: true, "gettls=" + allowedTLS.URL: true, "get=" + other.URL: false,
			"dial=" + hostOf(allowed): false, "socket=1.1.1.1:53": false,
			"env=ANTHROPIC_API_KEY": true, "env=GITHUB_TOKEN": false, "env=ADBOT_GIT_TOKEN": false, "env=HF_TOKEN": false,
		}
		if diff := cmp.Diff(oks(got), want); diff != "" {
			t.Errorf("attempts (-got +want):\n%s\n%v", diff, got)
		}
		if a := got["get="+allowed.URL]; a.Out != "model api" {
			t.Errorf("allowed host answered %q", a.Out)
		}
		if a := got["gettls="+allowedTLS.URL]; a.Out != "model api over tls" {
			t.Errorf("allowed host over a CONNECT tunnel answered %q", a.Out)
		}
		if a := got["env=ANTHROPIC_API_KEY"]; a.Out != h.secrets["ANTHROPIC_API_KEY"] {
			t.Errorf("the agent's API key did not arrive")
		}
		refused.mu.Lock()
		defer refused.mu.Unlock()
		wantRefused := []sandbox.Refusal{{Method: "GET", Host: hostOf(other), Reason: "not in the allowlist"}}
		if diff := cmp.Diff(refused.got, wantRefused); diff != "" {
			t.Errorf("refusals logged (-got +want):\n%s", diff)
		}
	})
	for _, tc := range []struct {
		name string
		p    *sandbox.Policy
	}{
		{"test", sandbox.Test(h.spec(t))},
		{"e2e", sandbox.E2E(h.spec(t))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := run(t, h, tc.p,
				"dial="+hostOf(allowed), "socket=1.1.1.1:53", "unix="+sock, "get="+allowed.URL,
				"env=ANTHROPIC_API_KEY", "env=GITHUB_TOKEN", "env=ADBOT_GIT_TOKEN", "env=HF_TOKEN", "env=HTTPS_PROXY")
			for k, a := range got {
				if a.OK {
					t.Errorf("%s succeeded (%q): %s has no network and no secret", k, a.Out, tc.name)
				}
			}
		})
	}
	// The control: unconfined, the stand-in reaches the host directly.
	t.Run("unconfined", func(t *testing.T) {
		if a := run(t, h, nil, "dial="+hostOf(allowed))["dial="+hostOf(allowed)]; !a.OK {
			t.Errorf("unconfined dial failed: %s", a.Err)
		}
	})
}

// TestNothingLeftBehind: a process that escapes into its own session dies
// with the sandbox's PID namespace.
func TestNothingLeftBehind(t *testing.T) {
	requireBwrap(t)
	h := newHost(t)
	marker := secret(t, "orphan-")
	got := run(t, h, sandbox.Test(h.spec(t)), "orphan="+marker)
	if a := got["orphan="+marker]; !a.OK {
		t.Fatalf("stand-in could not start its orphan: %s", a.Err)
	}
	// The namespace is torn down as the sandbox exits; give the kernel a moment.
	deadline := time.Now().Add(10 * time.Second)
	for pids := findProcs(t, marker); len(pids) > 0; pids = findProcs(t, marker) {
		if time.Now().After(deadline) {
			for _, pid := range pids {
				if p, err := os.FindProcess(pid); err == nil {
					_ = p.Kill()
				}
			}
			t.Fatalf("processes %v outlived their sandbox", pids)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func findProcs(t *testing.T, marker string) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), "hang="+marker) {
			pids = append(pids, pid)
		}
	}
	return pids
}
