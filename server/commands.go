package server

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/nvidia/adbot/runners"
)

// newLogger builds the process logger: JSON lines, or text for people.
func newLogger(c LoggingConfig, w io.Writer) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(strings.ToLower(c.Level))
	if err != nil {
		return zerolog.Nop(), fmt.Errorf("config: log level %q: %w", c.Level, err)
	}
	if c.Text {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

func newFlagSet(name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: %s\n\nFlags:\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

// parseConfig parses args, which may hold flags only, then loads the
// configuration file that path (the --config flag) names, as LoadConfig does.
func parseConfig(fs *flag.FlagSet, path *string, args []string) (Config, error) {
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return Config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return LoadConfig(*path, os.Getenv)
}

// ServeCommand runs `adbot serve [--config FILE]`.
func ServeCommand(ctx context.Context, args []string) error {
	fs := newFlagSet("serve", "adbot serve [--config FILE]\n\nRuns the webhook server, and the embedded NATS server unless NATS_URL is set.\n\n"+EnvHelp())
	path := fs.String("config", "", "YAML configuration `file` (optional)")
	cfg, err := parseConfig(fs, path, args)
	if err != nil {
		return err
	}
	log, err := newLogger(cfg.Logging, os.Stderr)
	if err != nil {
		return err
	}
	s, err := New(cfg, WithLogger(log))
	if err != nil {
		return err
	}
	return s.Run(log.WithContext(ctx))
}

// DevCommand runs `adbot dev`: the server, the embedded NATS server and a
// local runner in one process. Without App credentials every GitHub call is
// printed instead of sent; without a webhook secret one is generated and printed.
func DevCommand(newWorkflow func() (runners.Workflow, error)) func(ctx context.Context, args []string) error {
	return func(ctx context.Context, args []string) error { return devCommand(ctx, args, newWorkflow) }
}

func devCommand(ctx context.Context, args []string, newWorkflow func() (runners.Workflow, error)) error {
	fs := newFlagSet("dev", "adbot dev [--config FILE] [--port N] [--demo] [--grant LOGIN=PERMISSION,...]\n\nRuns the server, an embedded NATS server (store under ADBOT_DATA_DIR, default ./.data)\nand a local runner in one process (its mirror and worktrees under <data dir>/runner).\nWithout GITHUB_APP_ID and a private key, GitHub calls are printed, not sent. Without\nGITHUB_WEBHOOK_SECRET a secret is generated and printed for `adbot send`.\n\nOn a laptop: --demo runs one whole onboarding cycle with mock GPUs, a stand-in agent and\nend-to-end script, and a demo TensorRT-LLM remote. Or by hand: ADBOT_GPUS=mock:8xH100-80GB\nmocks idle GPUs, and ADBOT_TRTLLM_REMOTE set to a local bare repository (a path or file://\nURL) spares the clone from GitHub.")
	path := fs.String("config", "", "YAML configuration `file` (optional)")
	port := fs.Int("port", 0, "HTTP `port` (default $PORT or 8080)")
	demo := fs.Bool("demo", false, "run the local runner against a demo TensorRT-LLM remote with stand-ins for the agent and the GPUs (see server/demo.go)")
	grant := fs.String("grant", "", "without App credentials: repository permission of each `login=permission` (comma-separated; e.g. maint=write); anyone else has read, which may not start an onboarding (--demo grants its own demo maintainer write)")
	cfg, err := parseConfig(fs, path, args)
	if err != nil {
		return err
	}
	grants, err := ParseGrants(*grant)
	if err != nil {
		return fmt.Errorf("--grant: %w", err)
	}
	if *port != 0 {
		cfg.Server.Port = *port
	}
	// The data dir is fixed now, before anything (the runner's git runs in
	// other folders) could read a relative one from elsewhere.
	if cfg.DataDir, err = filepath.Abs(cfg.DataDir); err != nil {
		return fmt.Errorf("data dir %s: %w", cfg.DataDir, err)
	}
	if *demo {
		if err := setupDemo(ctx, cfg.DataDir, cfg.Server.Port, osEnv, os.Stdout); err != nil {
			return err
		}
		if _, ok := grants[DemoMaintainer]; !ok {
			if grants == nil {
				grants = map[string]string{}
			}
			grants[DemoMaintainer] = "write"
		}
	}
	// dev is for one machine: listen on loopback unless told otherwise.
	if cfg.NATS.URL == "" && cfg.NATS.Embedded.Host == DefaultNATSHost {
		cfg.NATS.Embedded.Host = "127.0.0.1"
	}
	if cfg.Server.Address == "" {
		cfg.Server.Address = "127.0.0.1"
	}
	cfg.Logging.Text = true
	log, err := newLogger(cfg.Logging, os.Stderr)
	if err != nil {
		return err
	}
	if cfg.GitHub.WebhookSecret == "" {
		cfg.GitHub.WebhookSecret = randomHex(32)
		fmt.Printf("No GITHUB_WEBHOOK_SECRET set; this run uses a generated one:\n\n  export GITHUB_WEBHOOK_SECRET=%s\n\nthen: adbot send --url http://localhost:%d%s issues examples/onboard.issues.json\n\n",
			cfg.GitHub.WebhookSecret, cfg.Server.Port, WebhookRoute)
	}
	opts := []Option{WithLogger(log), WithRun(localRunner(newWorkflow))}
	if !cfg.GitHub.HasApp() {
		log.Warn().Interface("grants", grants).Msg("no GitHub App credentials: GitHub calls are printed, not sent; logins not granted with --grant have read permission")
		opts = append(opts, WithClientCreator(NewDryRunClientCreator(log.With().Str(LogKeyComponent, "github-dry-run").Logger(),
			DryRunOutput(os.Stdout), DryRunPermissions(grants)), true))
		cfg.Sweeper.Disabled = true
	}
	s, err := New(cfg, opts...)
	if err != nil {
		return err
	}
	return s.Run(log.WithContext(ctx))
}

// SendCommand runs `adbot send [flags] EVENT FILE`: it signs FILE's bytes as
// GitHub does and posts them to a running server.
func SendCommand(ctx context.Context, args []string) error {
	fs := newFlagSet("send", "adbot send [--url URL] [--secret S] [--delivery GUID] EVENT FILE\n\nSigns FILE's bytes exactly (HMAC-SHA256 with the webhook secret) and posts them as a\nGitHub delivery of EVENT (e.g. issues, issue_comment). Prints the status and the body.")
	url := fs.String("url", "http://localhost:8080"+WebhookRoute, "webhook `URL`")
	secret := fs.String("secret", os.Getenv("GITHUB_WEBHOOK_SECRET"), "webhook `secret` (default $GITHUB_WEBHOOK_SECRET)")
	delivery := fs.String("delivery", "", "X-GitHub-Delivery `GUID` (default: a random one)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return errors.New("want EVENT and FILE")
	}
	event, file := fs.Arg(0), fs.Arg(1)
	if *secret == "" {
		return errors.New("no webhook secret: pass --secret or set GITHUB_WEBHOOK_SECRET")
	}
	body, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("read payload: %w", err)
	}
	if !json.Valid(body) {
		return fmt.Errorf("payload %s is not JSON", file)
	}
	guid := *delivery
	if guid == "" {
		guid = NewDeliveryID()
	}
	req, err := NewDeliveryRequest(ctx, *url, *secret, event, guid, body)
	if err != nil {
		return err
	}
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("post delivery: %w", err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	fmt.Printf("%s (delivery %s)\n", resp.Status, guid)
	if len(bytes.TrimSpace(out)) > 0 {
		fmt.Printf("%s\n", bytes.TrimSpace(out))
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("server answered %s", resp.Status)
	}
	return nil
}

// Sign returns GitHub's X-Hub-Signature-256 value for body: "sha256=" and the
// hex HMAC-SHA256 of the exact bytes.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// NewDeliveryRequest builds a signed webhook delivery as GitHub sends it.
func NewDeliveryRequest(ctx context.Context, url, secret, event, guid string, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("delivery request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/adbot-send")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", guid)
	req.Header.Set("X-Hub-Signature-256", Sign(secret, body))
	return req, nil
}

// NewDeliveryID returns a random GUID like GitHub's X-GitHub-Delivery.
func NewDeliveryID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
