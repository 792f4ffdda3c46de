package runners

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/internal/gpu/gputest"
)

func TestInventoryCommand(t *testing.T) {
	host := gputest.H100(4)
	host.Use(1, 6<<30, 4242)
	t.Setenv("ADBOT_GPUS", "")
	var out, errb bytes.Buffer
	if err := command(context.Background(), []string{"--inventory"}, &out, &errb, Deps{NVML: host}); err != nil {
		t.Fatal(err)
	}
	var rep InventoryReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	got := struct {
		Free, Admits, Assign []int
		Busy                 map[int]string
	}{rep.Free, rep.Admits, rep.Assign, rep.Busy}
	want := struct {
		Free, Admits, Assign []int
		Busy                 map[int]string
	}{[]int{0, 2, 3}, []int{2, 1}, []int{0, 2}, map[int]string{1: "6.0 GiB of memory in use; 1 compute process(es): pid 4242; 100% utilized"}}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("inventory (-got +want):\n%s", diff)
	}

	out.Reset()
	if err := command(context.Background(), []string{"--inventory"}, &out, &errb, Deps{NVML: gputest.Missing()}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"nvml": false`) || !strings.Contains(out.String(), "ERROR_LIBRARY_NOT_FOUND") {
		t.Errorf("without NVML:\n%s", out.String())
	}

	t.Setenv("ADBOT_GPUS", "0,x")
	if err := command(context.Background(), []string{"--inventory"}, &out, &errb, Deps{NVML: host}); err == nil || !strings.Contains(err.Error(), `"x" is not a GPU index`) {
		t.Errorf("bad ADBOT_GPUS: %v", err)
	}
}

func TestCommandFlags(t *testing.T) {
	var out, errb bytes.Buffer
	if err := command(context.Background(), []string{"--help"}, &out, &errb, Deps{NVML: gputest.H100(1)}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("--help: %v", err)
	}
	if !strings.Contains(errb.String(), "--force") || !strings.Contains(errb.String(), "ADBOT_GPUS") {
		t.Errorf("usage lacks --force or ADBOT_GPUS:\n%s", errb.String())
	}
	if err := command(context.Background(), []string{"extra"}, &out, &errb, Deps{NVML: gputest.H100(1)}); err == nil {
		t.Error("stray argument accepted")
	}
}

func TestConfigFromEnv(t *testing.T) {
	t.Setenv("ADBOT_RUNNER_NAME", "gpu-host-1.example.com")
	t.Setenv("ADBOT_GPUS", "2,3")
	t.Setenv("ADBOT_DISK_FLOOR_GB", "100")
	t.Setenv("ADBOT_PASS_ENV", "HF_HOME, HF_TOKEN,")
	t.Setenv("ADBOT_DATA_DIR", "/data/adbot")
	t.Setenv("GITHUB_V3_API_URL", "http://127.0.0.1:9/api/v3")
	c, err := ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	c, err = c.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "gpu-host-1.example.com" || c.GPUs.String() != "2,3" || c.DiskFloor != 100<<30 ||
		!cmp.Equal(c.PassEnv, []string{"HF_HOME", "HF_TOKEN"}) || c.RepoDir != "/data/adbot/trtllm.git" ||
		c.GitHubAPIURL != "http://127.0.0.1:9/api/v3/" || c.Remote != DefaultRemote || c.AgentCmd != "claude" {
		t.Errorf("config = %+v", c)
	}
	t.Setenv("ADBOT_DISK_FLOOR_GB", "0")
	if c, _ := ConfigFromEnv(); c.DiskFloor != -1 {
		t.Errorf("floor 0 = %d, want disabled (-1)", c.DiskFloor)
	}
	for k, v := range map[string]string{"ADBOT_DISK_FLOOR_GB": "lots", "ADBOT_GPUS": "all of them"} {
		t.Run(k, func(t *testing.T) {
			t.Setenv(k, v)
			if _, err := ConfigFromEnv(); err == nil || !strings.Contains(err.Error(), k) {
				t.Errorf("%s=%q: err = %v, want one naming it", k, v, err)
			}
		})
	}
	if _, err := (Config{Name: "bad name"}).withDefaults(); err == nil {
		t.Error("runner name with a space accepted")
	}
}

func TestBranchName(t *testing.T) {
	tests := map[string]string{
		"Qwen/Qwen3-0.6B":                  "adbot/qwen-qwen3-0.6b-12",
		"meta-llama/Llama-3.1-8B-Instruct": "adbot/meta-llama-llama-3.1-8b-instruct-12",
		"a/..b":                            "adbot/a-.b-12",
		"":                                 "adbot/model-12",
	}
	for id, want := range tests {
		if got := BranchName(&bus.Job{ModelID: id, Issue: 12}); got != want {
			t.Errorf("BranchName(%q) = %q, want %q", id, got, want)
		}
	}
}

func FuzzBranchName(f *testing.F) {
	for _, s := range []string{"Qwen/Qwen3-0.6B", "a/..b", ".x/y.lock", "~^:?*[\\ @{", "ünï/cødé", "-/-"} {
		f.Add(s, 7)
	}
	git, _ := exec.LookPath("git")
	f.Fuzz(func(t *testing.T, id string, issue int) {
		if issue <= 0 {
			return
		}
		b := BranchName(&bus.Job{ModelID: id, Issue: issue})
		if !strings.HasPrefix(b, "adbot/") || strings.Contains(b, "..") || strings.ContainsAny(b, " ~^:?*[\\@{") ||
			strings.Contains(b, "/.") || strings.HasSuffix(b, ".lock") || len(b) > 120 {
			t.Fatalf("BranchName(%q) = %q is not a safe branch name", id, b)
		}
		if git != "" && len(id) < 40 { // keep the fuzz fast; the seeds always get here
			if out, err := exec.Command(git, "check-ref-format", "--branch", b).CombinedOutput(); err != nil {
				t.Fatalf("git rejects %q: %s", b, out)
			}
		}
	})
}

// TestInventoryMock: adbot runner --inventory with ADBOT_GPUS=mock:... on a
// host without NVML lists the mocked GPUs as free and warns on stderr.
func TestInventoryMock(t *testing.T) {
	tests := []struct {
		spec       string
		wantFree   []int
		wantAdmits []int
		wantMemMiB uint64
	}{
		{"mock:8xH100-80GB", []int{0, 1, 2, 3, 4, 5, 6, 7}, []int{8, 4, 2, 1}, 81920},
		{"mock:4xA100-40GB", []int{0, 1, 2, 3}, []int{4, 2, 1}, 40960},
		{"mock:2xH200-141GB", []int{0, 1}, []int{2, 1}, 144384},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			t.Setenv("ADBOT_GPUS", tt.spec)
			var out, errb bytes.Buffer
			if err := command(context.Background(), []string{"--inventory"}, &out, &errb, Deps{NVML: gputest.Missing()}); err != nil {
				t.Fatal(err)
			}
			var rep InventoryReport
			if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			var mem []uint64
			for _, d := range rep.Devices {
				mem = append(mem, d.MemTotal>>20)
			}
			type summary struct {
				Mock, Selection string
				NVML            bool
				Free, Admits    []int
				Busy            map[int]string
				MemMiB          []uint64
			}
			got := summary{rep.Mock, rep.Selection, rep.NVML, rep.Free, rep.Admits, rep.Busy, mem}
			want := summary{tt.spec, tt.spec, true, tt.wantFree, tt.wantAdmits, nil, slices.Repeat([]uint64{tt.wantMemMiB}, len(tt.wantFree))}
			if diff := cmp.Diff(got, want); diff != "" {
				t.Errorf("inventory (-got +want):\n%s", diff)
			}
			if !strings.Contains(errb.String(), "warning: the GPUs are mocked (ADBOT_GPUS="+tt.spec+")") {
				t.Errorf("stderr = %q, want a warning that the GPUs are mocked", errb.String())
			}
		})
	}
	t.Setenv("ADBOT_GPUS", "mock:8xH100")
	var out, errb bytes.Buffer
	err := command(context.Background(), []string{"--inventory"}, &out, &errb, Deps{NVML: gputest.Missing()})
	if err == nil || !strings.Contains(err.Error(), "want mock:<count>x<model>-<memory>GB, e.g. mock:8xH100-80GB") {
		t.Errorf("bad mock spec: %v, want an error naming the accepted form", err)
	}
}

// TestConfigPaths: data dirs and a local remote are made absolute when the
// runner starts (adbot dev's default is ./.data), URLs are left alone, and
// a mirror dir that would hold the worktrees is refused.
func TestConfigPaths(t *testing.T) {
	cwd := t.TempDir()
	t.Chdir(cwd)
	type paths struct{ DataDir, RepoDir, Remote string }
	tests := []struct {
		name    string
		in      Config
		want    paths
		wantErr string
	}{
		{"relative data dir", Config{DataDir: ".data/runner"},
			paths{cwd + "/.data/runner", cwd + "/.data/runner/trtllm.git", DefaultRemote}, ""},
		{"relative mirror and remote", Config{DataDir: "/srv/adbot", RepoDir: "mirror.git", Remote: "../trtllm.git"},
			paths{"/srv/adbot", cwd + "/mirror.git", filepath.Dir(cwd) + "/trtllm.git"}, ""},
		{"file URL remote", Config{DataDir: "/srv/adbot", Remote: "file:///srv/trtllm.git"},
			paths{"/srv/adbot", "/srv/adbot/trtllm.git", "file:///srv/trtllm.git"}, ""},
		{"scp-like remote", Config{DataDir: "/srv/adbot", Remote: "git@github.com:NVIDIA/TensorRT-LLM.git"},
			paths{"/srv/adbot", "/srv/adbot/trtllm.git", "git@github.com:NVIDIA/TensorRT-LLM.git"}, ""},
		{"mirror is the data dir", Config{DataDir: ".data", RepoDir: "./.data"}, paths{}, "worktree root inside the mirror"},
		{"mirror above the data dir", Config{DataDir: "/srv/adbot/data", RepoDir: "/srv/adbot"}, paths{}, "worktree root inside the mirror"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in.Name = "r"
			c, err := tt.in.withDefaults()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "ADBOT_REPO_DIR") {
					t.Fatalf("err = %v, want %q naming ADBOT_REPO_DIR", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(paths{c.DataDir, c.RepoDir, c.Remote}, tt.want); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
		})
	}
}
