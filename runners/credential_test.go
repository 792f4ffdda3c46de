package runners

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestGitCredentialHelper checks that git, configured the way Push does it,
// answers a credential request with the token from its environment, so the
// token is in no URL, argument or file.
func TestGitCredentialHelper(t *testing.T) {
	cmd := exec.Command("git", "credential", "fill")
	cmd.Env = append(os.Environ(),
		"GIT_CONFIG_NOSYSTEM=1", "HOME="+t.TempDir(), "GIT_TERMINAL_PROMPT=0",
		"GIT_CONFIG_COUNT=2",
		"GIT_CONFIG_KEY_0=credential.helper", "GIT_CONFIG_VALUE_0=",
		"GIT_CONFIG_KEY_1=credential.helper", "GIT_CONFIG_VALUE_1="+gitCredentialHelper,
		"ADBOT_GIT_TOKEN=ghs_from_env_123")
	cmd.Stdin = strings.NewReader("protocol=https\nhost=github.com\npath=NVIDIA/TensorRT-LLM.git\n\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git credential fill: %v\n%s", err, out)
	}
	for _, want := range []string{"username=x-access-token", "password=ghs_from_env_123"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("credential answer lacks %q:\n%s", want, out)
		}
	}
}
