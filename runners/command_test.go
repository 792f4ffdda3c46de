package runners

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os/exec"
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
