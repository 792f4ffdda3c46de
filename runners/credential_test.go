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
	fill := func(host string) (string, error) {
		cmd := exec.Command("git", "credential", "fill")
		cmd.Env = append(os.Environ(),
			"GIT_CONFIG_NOSYSTEM=1", "HOME="+t.TempDir(), "GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=",
			"GIT_CONFIG_COUNT=2",
			"GIT_CONFIG_KEY_0=credential.helper", "GIT_CONFIG_VALUE_0=",
			"GIT_CONFIG_KEY_1=credential.helper", "GIT_CONFIG_VALUE_1="+gitCredentialHelper,
			"ADBOT_GIT_TOKEN=ghs_from_env_123", "ADBOT_GIT_HOST="+remoteHost("https://github.com/NVIDIA/TensorRT-LLM.git"))
		cmd.Stdin = strings.NewReader("protocol=https\nhost=" + host + "\npath=NVIDIA/TensorRT-LLM.git\n\n")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := fill("github.com")
	if err != nil {
		t.Fatalf("git credential fill: %v\n%s", err, out)
	}
	for _, want := range []string{"username=x-access-token", "password=ghs_from_env_123"} {
		if !strings.Contains(out, want) {
			t.Errorf("credential answer lacks %q:\n%s", want, out)
		}
	}
	// Another host (a rewritten or redirected push) gets no token.
	if out, _ := fill("evil.example"); strings.Contains(out, "ghs_from_env_123") {
		t.Errorf("credential answer for another host holds the token:\n%s", out)
	}
}
