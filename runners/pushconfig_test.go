package runners

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckPushConfig: a push with a token goes ahead only over the
// configuration git writes for the mirror; a setting a cycle's process could
// have added to send the token elsewhere or run a program stops it.
func TestCheckPushConfig(t *testing.T) {
	const remote = "https://github.com/NVIDIA/TensorRT-LLM.git"
	mirror := func(t *testing.T, extra ...[2]string) string {
		dir := filepath.Join(t.TempDir(), "m.git")
		run := func(args ...string) {
			if out, err := exec.Command("git", args...).CombinedOutput(); err != nil {
				t.Fatalf("git %v: %v\n%s", args, err, out)
			}
		}
		run("init", "--quiet", "--bare", dir)
		for _, kv := range append([][2]string{
			{"remote.origin.url", remote},
			{"remote.origin.fetch", "+refs/heads/*:refs/remotes/origin/*"},
			{"user.name", "adbot"},
			{"branch.adbot/x-1.remote", "origin"},
			{"branch.adbot/x-1.merge", "refs/heads/adbot/x-1"},
		}, extra...) {
			run("--git-dir", dir, "config", "--add", kv[0], kv[1])
		}
		return dir
	}
	if err := checkPushConfig(context.Background(), mirror(t), remote); err != nil {
		t.Fatalf("clean mirror: %v", err)
	}
	for _, kv := range [][2]string{
		{"remote.origin.pushurl", "https://evil.example/x.git"},
		{"url.https://evil.example/.insteadOf", "https://github.com/"},
		{"http.proxy", "http://evil.example:8080"},
		{"http.https://github.com/.sslVerify", "false"},
		{"credential.https://github.com.helper", "!cat >/tmp/x"},
		{"core.askPass", "/tmp/x"},
		{"core.hooksPath", "/tmp/hooks"},
		{"include.path", "/tmp/other"},
		{"remote.origin.url", "https://evil.example/x.git"},
		{"branch.adbot/x-1.remote", "evil"},
	} {
		err := checkPushConfig(context.Background(), mirror(t, kv), remote)
		if err == nil || !strings.Contains(err.Error(), "not pushing with a token") {
			t.Errorf("%s = %s: err = %v, want a refusal", kv[0], kv[1], err)
		}
	}
}
