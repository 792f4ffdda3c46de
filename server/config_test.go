package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nvidia/adbot/jobs"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfig(t *testing.T) {
	key := testKey(t)
	keyFile := writeFile(t, "app.pem", key)
	tests := []struct {
		name    string
		yaml    string // config file content; "" means no file
		env     map[string]string
		check   func(t *testing.T, c Config)
		wantErr string // substring of LoadConfig's or Validate(true)'s error
	}{
		{
			name: "defaults from environment only",
			env:  map[string]string{"GITHUB_APP_ID": "123", "GITHUB_APP_PRIVATE_KEY": key, "GITHUB_WEBHOOK_SECRET": "s"},
			check: func(t *testing.T, c Config) {
				want := DefaultConfig()
				want.GitHub.AppID, want.GitHub.PrivateKey, want.GitHub.WebhookSecret = 123, key, "s"
				if diff := cmp.Diff(c, want); diff != "" {
					t.Errorf("config (-got +want):\n%s", diff)
				}
			},
		},
		{
			name: "environment overrides file",
			yaml: "server:\n  port: 9000\n  intake_timeout: 3s\ngithub:\n  app_id: 5\n  webhook_secret: from-file\nnats:\n  replicas: 3\n  url: nats://a:4222,nats://b:4222\ntrigger_label: onboard-me\nsweeper:\n  interval: 10m\n",
			env: map[string]string{
				"PORT": "8081", "GITHUB_APP_PRIVATE_KEY_FILE": keyFile, "GITHUB_WEBHOOK_SECRET": "from-env",
				"ADBOT_NATS_PORT": "4333", "HF_ENDPOINT": "http://hub.local", "HF_TOKEN": "hf_x", "ADBOT_DATA_DIR": "/var/lib/adbot",
				"GITHUB_V3_API_URL": "https://ghe.example.com/api/v3/", "ADBOT_TRIGGER_LABEL": "ad-onboard-2",
			},
			check: func(t *testing.T, c Config) {
				got := []any{c.Server.Port, c.Server.IntakeTimeout, c.GitHub.AppID, c.GitHub.PrivateKey == key, c.GitHub.WebhookSecret,
					c.NATS.Embedded.Port, c.NATS.Replicas, c.NATS.URL, c.Hub.Endpoint, c.Hub.Token, c.DataDir, c.GitHub.V3APIURL, c.TriggerLabel, c.Sweeper.Interval}
				want := []any{8081, 3 * time.Second, int64(5), true, "from-env",
					4333, 3, "nats://a:4222,nats://b:4222", "http://hub.local", "hf_x", "/var/lib/adbot", "https://ghe.example.com/api/v3/", "ad-onboard-2", 10 * time.Minute}
				if diff := cmp.Diff(got, want); diff != "" {
					t.Errorf("config (-got +want):\n%s", diff)
				}
			},
		},
		{name: "unknown key in file", yaml: "server:\n  prot: 9000\n", wantErr: "field prot not found"},
		{name: "file not YAML", yaml: "server: [\n", wantErr: "decode yaml"},
		{name: "port not a number", env: map[string]string{"PORT": "http"}, wantErr: `PORT="http" is not a port number`},
		{name: "port out of range", env: map[string]string{"PORT": "70000", "GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY": key, "GITHUB_WEBHOOK_SECRET": "s"}, wantErr: "server port 70000 is not in 1-65535"},
		{name: "nats port out of range", env: map[string]string{"ADBOT_NATS_PORT": "0x10", "GITHUB_APP_ID": "1"}, wantErr: "ADBOT_NATS_PORT"},
		{name: "app id not a number", env: map[string]string{"GITHUB_APP_ID": "adbot"}, wantErr: `GITHUB_APP_ID="adbot" is not a positive number`},
		{name: "key file missing", env: map[string]string{"GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY_FILE": "/nonexistent/app.pem"}, wantErr: "read GitHub App private key file"},
		{name: "key and key file", env: map[string]string{"GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY": key, "GITHUB_APP_PRIVATE_KEY_FILE": keyFile}, wantErr: "not both"},
		{name: "key not PEM", env: map[string]string{"GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY": "secret", "GITHUB_WEBHOOK_SECRET": "s"}, wantErr: "not PEM encoded"},
		{name: "no credentials", env: map[string]string{"GITHUB_WEBHOOK_SECRET": "s"}, wantErr: "GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY"},
		{name: "key without id", env: map[string]string{"GITHUB_APP_PRIVATE_KEY": key, "GITHUB_WEBHOOK_SECRET": "s"}, wantErr: "GITHUB_APP_ID is not"},
		{name: "no webhook secret", env: map[string]string{"GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY": key}, wantErr: "GITHUB_WEBHOOK_SECRET is required"},
		{name: "bad api url", env: map[string]string{"GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY": key, "GITHUB_WEBHOOK_SECRET": "s", "GITHUB_V3_API_URL": "ftp://x"}, wantErr: "GitHub API URL"},
		{name: "bodies in flight from the environment", env: map[string]string{"GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY": key, "GITHUB_WEBHOOK_SECRET": "s", "ADBOT_MAX_BODIES_IN_FLIGHT": "52428800"},
			check: func(t *testing.T, c Config) {
				if diff := cmp.Diff(c.Server.MaxBodiesInFlight, int64(50<<20)); diff != "" {
					t.Errorf("MaxBodiesInFlight (-got +want):\n%s", diff)
				}
			}},
		{name: "bodies in flight not a number", env: map[string]string{"GITHUB_APP_ID": "1", "ADBOT_MAX_BODIES_IN_FLIGHT": "lots"}, wantErr: "ADBOT_MAX_BODIES_IN_FLIGHT"},
		{name: "bodies in flight under one body", env: map[string]string{"GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY": key, "GITHUB_WEBHOOK_SECRET": "s", "ADBOT_MAX_BODIES_IN_FLIGHT": "1000"}, wantErr: "less than max body bytes"},
		{name: "bad nats url", env: map[string]string{"GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY": key, "GITHUB_WEBHOOK_SECRET": "s", "NATS_URL": "not a url"}, wantErr: "NATS URL"},
		{name: "creds without url", env: map[string]string{"GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY": key, "GITHUB_WEBHOOK_SECRET": "s", "NATS_CREDS": keyFile}, wantErr: "NATS_CREDS is set without NATS_URL"},
		{name: "creds file missing", env: map[string]string{"GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY": key, "GITHUB_WEBHOOK_SECRET": "s", "NATS_URL": "nats://n:4222", "NATS_CREDS": "/nonexistent.creds"}, wantErr: "NATS credentials file"},
		{name: "sweep window too long", yaml: "sweeper:\n  window: 96h\n", env: map[string]string{"GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY": key, "GITHUB_WEBHOOK_SECRET": "s"}, wantErr: "sweeper window"},
		{name: "metrics on the public port", yaml: "server:\n  metrics_address: \":8080\"\n", env: map[string]string{"GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY": key, "GITHUB_WEBHOOK_SECRET": "s"}, wantErr: "metrics must be served apart"},
		{name: "metrics address not host:port", env: map[string]string{"ADBOT_METRICS_ADDRESS": "9091", "GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY": key, "GITHUB_WEBHOOK_SECRET": "s"}, wantErr: "metrics address"},
		{
			name: "feedback settle from file, then environment",
			yaml: "feedback_settle: 2s\n",
			env:  map[string]string{"GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY": key, "GITHUB_WEBHOOK_SECRET": "s"},
			check: func(t *testing.T, c Config) {
				if c.FeedbackSettle == nil || *c.FeedbackSettle != 2*time.Second {
					t.Errorf("feedback settle = %v, want 2s", c.FeedbackSettle)
				}
			},
		},
		{
			name: "feedback settle 0 from environment is kept",
			yaml: "feedback_settle: 2s\n",
			env:  map[string]string{"ADBOT_FEEDBACK_SETTLE": "0s", "GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY": key, "GITHUB_WEBHOOK_SECRET": "s"},
			check: func(t *testing.T, c Config) {
				if c.FeedbackSettle == nil || *c.FeedbackSettle != 0 {
					t.Errorf("feedback settle = %v, want 0", c.FeedbackSettle)
				}
			},
		},
		{name: "feedback settle not a duration", env: map[string]string{"ADBOT_FEEDBACK_SETTLE": "10"}, wantErr: `ADBOT_FEEDBACK_SETTLE="10" is not a duration`},
		{name: "feedback settle negative", yaml: "feedback_settle: -1s\n", env: map[string]string{"GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY": key, "GITHUB_WEBHOOK_SECRET": "s"}, wantErr: "feedback settle -1s is negative"},
		{name: "several errors at once", yaml: "server:\n  port: -5\nnats:\n  replicas: 9\n", env: map[string]string{"GITHUB_WEBHOOK_SECRET": "s"}, wantErr: "server port -5 is not in 1-65535\nNATS replicas 9"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := ""
			if tc.yaml != "" {
				path = writeFile(t, "adbot.yaml", tc.yaml)
			}
			c, err := LoadConfig(path, envOf(tc.env))
			if err == nil {
				err = c.Validate(true)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("error = %v", err)
			}
			tc.check(t, c)
		})
	}
}

// A malformed NATS_URL used to be quoted whole in the error, with the
// user and password it held.
func TestValidateRedactsNATSURL(t *testing.T) {
	c := DefaultConfig()
	c.GitHub.WebhookSecret = "s"
	c.NATS.URL = "nats://adbot:hunter2@"
	err := c.Validate(false)
	if err == nil || !strings.Contains(err.Error(), "NATS URL") || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error = %v, want one about the NATS URL without its password", err)
	}
}

func TestValidateDevWithoutApp(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(false); err == nil || !strings.Contains(err.Error(), "GITHUB_WEBHOOK_SECRET is required") {
		t.Errorf("dev config without a webhook secret: %v, want a refusal", err)
	}
	c.GitHub.WebhookSecret = "s"
	if err := c.Validate(false); err != nil {
		t.Errorf("dev config without App credentials: %v", err)
	}
	if err := c.Validate(true); err == nil {
		t.Error("serve config without App credentials validated")
	}
}

func TestConfigFileMissing(t *testing.T) {
	if _, err := LoadConfig(filepath.Join(t.TempDir(), "none.yaml"), envOf(nil)); err == nil || !strings.Contains(err.Error(), "read config file") {
		t.Errorf("error = %v", err)
	}
}

func TestV4URL(t *testing.T) {
	for in, want := range map[string]string{
		"https://api.github.com/":             "https://api.github.com/graphql",
		"https://ghe.example.com/api/v3/":     "https://ghe.example.com/api/graphql",
		"http://127.0.0.1:5555/api/v3":        "http://127.0.0.1:5555/api/graphql",
		"http://127.0.0.1:5555/custom/prefix": "http://127.0.0.1:5555/custom/prefix/graphql",
	} {
		if got := v4URL(in); got != want {
			t.Errorf("v4URL(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzDecodeConfig(f *testing.F) {
	f.Add([]byte("server:\n  port: 8080\n"))
	f.Add([]byte("github:\n  app_id: 12\n  timeout: 3s\nsweeper:\n  interval: 5m\n"))
	f.Add([]byte("nats: {url: nats://x:4222, replicas: 3}\n"))
	f.Add([]byte("unknown: 1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var c Config
		if err := decodeConfig(b, &c); err != nil {
			return
		}
		c.setDefaults()
		_ = c.Validate(false) // must not panic
	})
}

// TestExampleConfig keeps deploy/adbot.example.yaml in step with Config: it
// decodes strictly and holds exactly the defaults.
func TestExampleConfig(t *testing.T) {
	c, err := LoadConfig(filepath.Join("..", "deploy", "adbot.example.yaml"), envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c, DefaultConfig()); diff != "" {
		t.Errorf("example config differs from the defaults (-example +defaults):\n%s", diff)
	}
}

// TestFeedbackSettleWiring: the worker gets the configured settle time; an
// explicit 0 reaches it as "at once", which its own zero does not mean.
func TestFeedbackSettleWiring(t *testing.T) {
	if DefaultFeedbackSettle != jobs.DefaultFeedbackSettle {
		t.Errorf("DefaultFeedbackSettle = %s, the worker's default is %s", DefaultFeedbackSettle, jobs.DefaultFeedbackSettle)
	}
	d := func(x time.Duration) *time.Duration { return &x }
	for _, tt := range []struct {
		in   *time.Duration
		want time.Duration
	}{
		{nil, DefaultFeedbackSettle}, {d(0), -1}, {d(3 * time.Second), 3 * time.Second},
	} {
		if got := feedbackSettle(tt.in); got != tt.want {
			t.Errorf("feedbackSettle(%v) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
