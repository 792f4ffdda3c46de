package sandbox_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nvidia/adbot/runners/sandbox"
)

func TestParseRule(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want sandbox.Rule
		err  string
	}{
		{in: "api.anthropic.com", want: sandbox.Rule{Host: "api.anthropic.com", Port: 443}},
		{in: " API.Anthropic.com. ", want: sandbox.Rule{Host: "api.anthropic.com", Port: 443}},
		{in: "huggingface.co:80", want: sandbox.Rule{Host: "huggingface.co", Port: 80}},
		{in: "*.hf.co", want: sandbox.Rule{Host: "hf.co", Port: 443, Wildcard: true}},
		{in: "127.0.0.1:8080", want: sandbox.Rule{Host: "127.0.0.1", Port: 8080}},
		{in: "[::1]:8443", want: sandbox.Rule{Host: "::1", Port: 8443}},
		{in: "10.0.0.1", want: sandbox.Rule{Host: "10.0.0.1", Port: 443}},
		{in: "", err: "want a host name"},
		{in: "host:0", err: "port"},
		{in: "host:x", err: "port"},
		{in: "host:70000", err: "port"},
		{in: "::1", err: "brackets"},
		{in: "*.com", err: "wildcard"},
		{in: "*.10.0.0.1", err: "wildcard"},
		{in: "a..b", err: "bad label"},
		{in: "-a.b", err: "bad label"},
		{in: "a b.c", err: "character"},
		{in: "http://x.y", err: ""}, // any error
		{in: "a.b/c", err: "character"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := sandbox.ParseRule(tc.in)
			if tc.want == (sandbox.Rule{}) {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseRule(%q) = %v, %v; want an error containing %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
		})
	}
}

func TestAllows(t *testing.T) {
	rules, err := sandbox.ParseRules("api.anthropic.com", "*.hf.co,127.0.0.1:8080", "[::1]:9000")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host string
		port int
		want bool
	}{
		{"api.anthropic.com", 443, true},
		{"API.ANTHROPIC.COM.", 443, true},
		{"api.anthropic.com", 80, false},
		{"anthropic.com", 443, false},
		{"evil-api.anthropic.com", 443, false},
		{"api.anthropic.com.evil.com", 443, false},
		{"cdn.hf.co", 443, true},
		{"hf.co", 443, false},
		{"xhf.co", 443, false},
		{"127.0.0.1", 8080, true},
		{"127.0.0.2", 8080, false},
		{"::ffff:127.0.0.1", 8080, true},
		{"[::1]", 9000, true},
		{"::1", 9000, true},
		{"localhost", 8080, false},
	} {
		if got := sandbox.Allows(rules, tc.host, tc.port); got != tc.want {
			t.Errorf("Allows(%s:%d) = %v, want %v", tc.host, tc.port, got, tc.want)
		}
	}
}

func FuzzParseRule(f *testing.F) {
	for _, s := range []string{"api.anthropic.com", "*.hf.co:80", "[::1]:1", "1.2.3.4", "a:b:c", "*.", ".", "x:65535"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := sandbox.ParseRule(s)
		if err != nil {
			return
		}
		if r.Port < 1 || r.Port > 65535 || r.Host == "" {
			t.Fatalf("ParseRule(%q) = %+v", s, r)
		}
		back, err := sandbox.ParseRule(r.String())
		if err != nil || back != r {
			t.Fatalf("ParseRule(%q) = %+v, whose String %q reads back as %+v, %v", s, r, r.String(), back, err)
		}
		if !r.Wildcard && !sandbox.Allows([]sandbox.Rule{r}, r.Host, r.Port) {
			t.Fatalf("rule %+v does not allow its own host", r)
		}
	})
}

func TestParseToolList(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  string
	}{
		{in: "", want: nil},
		{in: "Read, Edit ,,Bash", want: []string{"Read", "Edit", "Bash"}},
		{in: "Bash(git diff:*),Bash(a,b:*), WebFetch", want: []string{"Bash(git diff:*)", "Bash(a,b:*)", "WebFetch"}},
		{in: "Read(./src/**)", want: []string{"Read(./src/**)"}},
		{in: "Bash(x", err: "unclosed"},
		{in: "Bash)x(", err: "unmatched"},
		{in: "Read\nBash", err: "control character"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := sandbox.ParseToolList(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseToolList(%q) = %q, %v; want an error containing %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
		})
	}
}

func TestDefaultToolListsParse(t *testing.T) {
	for _, l := range [][]string{sandbox.DefaultAllowedTools, sandbox.DefaultDisallowedTools} {
		got, err := sandbox.ParseToolList(strings.Join(l, ","))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(got, l); diff != "" {
			t.Errorf("default list does not read back (-got +want):\n%s", diff)
		}
	}
}

func FuzzParseToolList(f *testing.F) {
	for _, s := range []string{"Read,Edit", "Bash(a,b:*)", "((", ")", "Bash(git push:*), WebFetch"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := sandbox.ParseToolList(s)
		if err != nil {
			return
		}
		for _, r := range got {
			if r == "" || r != strings.TrimSpace(r) {
				t.Fatalf("ParseToolList(%q) gave rule %q", s, r)
			}
		}
		back, err := sandbox.ParseToolList(strings.Join(got, ","))
		if err != nil || !cmp.Equal(back, got) {
			t.Fatalf("ParseToolList(%q) = %q, which reads back as %q, %v", s, got, back, err)
		}
	})
}

func TestParseMode(t *testing.T) {
	for in, want := range map[string]sandbox.Mode{"": sandbox.ModeBwrap, "bwrap": sandbox.ModeBwrap, " OFF ": sandbox.ModeOff} {
		if got, err := sandbox.ParseMode(in); err != nil || got != want {
			t.Errorf("ParseMode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := sandbox.ParseMode("docker"); err == nil {
		t.Error("ParseMode(docker): no error")
	}
}

func TestEnviron(t *testing.T) {
	spec := sandbox.Spec{Worktree: "/w", Scratch: "/s", GPUs: []int{4, 6}}
	apiKey := "ANTHROPIC_API_KEY=" + secret(t, "")
	env := []string{
		"PATH=/usr/bin", "HOME=/root", "TMPDIR=/var/tmp", "HF_HOME=/hf", "HF_TOKEN=" + secret(t, ""), "GITHUB_TOKEN=" + secret(t, ""),
		"ADBOT_GIT_TOKEN=" + secret(t, ""), "GH_TOKEN=" + secret(t, ""), apiKey, "NATS_CREDS=/c", "https_proxy=http://corp:3128",
		"CUDA_VISIBLE_DEVICES=4,6", "AWS_SECRET_ACCESS_KEY=" + secret(t, ""),
	}
	for _, tc := range []struct {
		name string
		p    *sandbox.Policy
		want []string
	}{
		{"agent", sandbox.Agent(spec, "/run/px.sock", ""), []string{
			"PATH=/usr/bin", "HF_HOME=/hf", apiKey, "HOME=/s", "TMPDIR=/s/tmp",
			"CUDA_DEVICE_ORDER=PCI_BUS_ID", "CUDA_VISIBLE_DEVICES=0,1",
			"HTTPS_PROXY=http://127.0.0.1:3128", "HTTP_PROXY=http://127.0.0.1:3128", "https_proxy=http://127.0.0.1:3128", "http_proxy=http://127.0.0.1:3128",
			"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1", "DISABLE_AUTOUPDATER=1",
		}},
		{"agent without egress", sandbox.Agent(sandbox.Spec{Worktree: "/w", Scratch: "/s"}, "", "CLAUDE_CODE_OAUTH_TOKEN"), []string{
			"PATH=/usr/bin", "HF_HOME=/hf", "HOME=/s", "TMPDIR=/s/tmp", "CUDA_VISIBLE_DEVICES=",
			"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1", "DISABLE_AUTOUPDATER=1",
		}},
		{"test", sandbox.Test(spec), []string{
			"PATH=/usr/bin", "HF_HOME=/hf", "HOME=/s", "TMPDIR=/s/tmp",
			"CUDA_DEVICE_ORDER=PCI_BUS_ID", "CUDA_VISIBLE_DEVICES=0,1", "HF_HUB_OFFLINE=1",
		}},
		{"e2e", sandbox.E2E(spec), []string{
			"PATH=/usr/bin", "HF_HOME=/hf", "HOME=/s", "TMPDIR=/s/tmp",
			"CUDA_DEVICE_ORDER=PCI_BUS_ID", "CUDA_VISIBLE_DEVICES=0,1", "HF_HUB_OFFLINE=1", "TRANSFORMERS_OFFLINE=1",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.p.Environ(env), tc.want); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
		})
	}
	t.Run("a GitHub token is never kept", func(t *testing.T) {
		p := sandbox.Agent(spec, "", "GITHUB_TOKEN")
		for _, kv := range p.Environ(env) {
			if strings.HasPrefix(kv, "GITHUB_TOKEN=") {
				t.Errorf("GITHUB_TOKEN kept: %s", kv)
			}
		}
	})
}
