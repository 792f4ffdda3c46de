package server

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/jobs"
	"github.com/nvidia/adbot/server/jobpage"
)

// Tuning values. Each has a config key that overrides it; these are the defaults.
const (
	// DefaultPort is the HTTP port (PORT).
	DefaultPort = 8080
	// DefaultNATSPort is the embedded NATS server's client port (ADBOT_NATS_PORT).
	DefaultNATSPort = 4222
	// DefaultNATSHost is where the embedded NATS server listens: every interface,
	// so that runners on other hosts reach it.
	DefaultNATSHost = "0.0.0.0"
	// DefaultTriggerLabel is the issue label that asks for an onboarding (ADBOT_TRIGGER_LABEL).
	DefaultTriggerLabel = bus.DefaultTriggerLabel
	// DefaultV3APIURL is GitHub's REST API.
	DefaultV3APIURL = "https://api.github.com/"
	// DefaultHubEndpoint is the HuggingFace Hub.
	DefaultHubEndpoint = "https://huggingface.co"
	// DefaultDataDir holds the embedded JetStream store when ADBOT_DATA_DIR is not set.
	DefaultDataDir = "./.data"

	// DefaultMaxBodyBytes bounds a webhook body: GitHub never sends more than 25 MB.
	DefaultMaxBodyBytes = 25 << 20
	// DefaultMaxBodiesInFlight bounds the webhook body bytes read at once, over
	// all requests (ADBOT_MAX_BODIES_IN_FLIGHT): a request that would pass it
	// is answered 503 with Retry-After. Eight 25 MB bodies once took the
	// process to 500 MB.
	DefaultMaxBodiesInFlight = 4 * DefaultMaxBodyBytes
	// DefaultBusyRetryAfter is the Retry-After of that 503.
	DefaultBusyRetryAfter = 5 * time.Second
	// DefaultIntakeTimeout bounds one webhook request; GitHub gives up after 10 s.
	DefaultIntakeTimeout = 8 * time.Second
	// DefaultReadHeaderTimeout, DefaultReadTimeout, DefaultWriteTimeout and
	// DefaultIdleTimeout bound the HTTP server's connections.
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 30 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	// DefaultMetricsAddress serves /metrics apart from the public port, on
	// loopback: only this host reaches it unless ADBOT_METRICS_ADDRESS says
	// otherwise (fly.toml sets ":9091" for the platform's scraper).
	DefaultMetricsAddress = "127.0.0.1:9091"
	// DefaultShutdownTimeout is how long in-flight requests get to finish on shutdown.
	DefaultShutdownTimeout = 15 * time.Second

	// DefaultGitHubTimeout bounds one GitHub API request.
	DefaultGitHubTimeout = 20 * time.Second
	// DefaultMaxIdleConnsPerHost is how many idle connections to GitHub and
	// to the Hub are kept for reuse.
	DefaultMaxIdleConnsPerHost = 64
	// DefaultUserAgent is the base of the GitHub clients' User-Agent.
	DefaultUserAgent = "adbot"

	// DefaultSweepInterval is how often the redelivery sweeper looks for failed deliveries.
	DefaultSweepInterval = 5 * time.Minute
	// DefaultSweepWindow is how far back the sweeper looks: GitHub keeps three days.
	DefaultSweepWindow = 72 * time.Hour
	// DefaultSweepMaxPages bounds one sweep (100 deliveries a page).
	DefaultSweepMaxPages = 50
	// DefaultSweepMaxAttempts bounds the redeliveries one process asks for one delivery.
	DefaultSweepMaxAttempts = 3

	// DefaultTokenTimeout bounds one token request, GitHub round trip included.
	DefaultTokenTimeout = 15 * time.Second
	// DefaultWorkers is how many commands the command worker carries out at
	// once. Each spends most of its time waiting on GitHub, the Hub and
	// JetStream: 32 sustain about 3,000 onboard commands a second on two
	// cores and keep a 500/s burst under 20 ms at p99 (docs/BENCHMARKS.md,
	// "Webhook intake"), well under GitHub's 100 concurrent requests.
	DefaultWorkers = 32
	// DefaultFeedbackSettle is how long review remarks on an idle job wait for
	// the rest of a burst before their cycle goes out.
	DefaultFeedbackSettle = jobs.DefaultFeedbackSettle
	// DefaultNATSReadyPoll is how often start-up looks whether the embedded
	// nats-server accepts clients yet.
	DefaultNATSReadyPoll = 100 * time.Millisecond
	// DefaultNATSConnectTimeout bounds the first connection to NATS and the bus set-up.
	DefaultNATSConnectTimeout = 30 * time.Second
)

// Config is everything adbot serve needs. It is decoded strictly from an
// optional YAML file, then overridden from the environment (fly.io secrets
// arrive as environment variables).
type Config struct {
	// Server configures the HTTP listener.
	Server HTTPConfig `yaml:"server"`
	// GitHub configures the App: credentials, API URL, clients.
	GitHub GitHubConfig `yaml:"github"`
	// NATS configures the bus: an external server, or the embedded one.
	NATS NATSConfig `yaml:"nats"`
	// Hub configures the HuggingFace Hub client.
	Hub HubConfig `yaml:"hub"`
	// DataDir holds the embedded JetStream store (ADBOT_DATA_DIR).
	DataDir string `yaml:"data_dir"`
	// TriggerLabel is the issue label that asks for an onboarding (ADBOT_TRIGGER_LABEL).
	TriggerLabel string `yaml:"trigger_label"`
	// Sweeper configures the redelivery of failed webhook deliveries.
	Sweeper SweeperConfig `yaml:"sweeper"`
	// Workers is how many commands this process carries out at once.
	Workers int `yaml:"workers"`
	// FeedbackSettle is how long review remarks on a job with no cycle under
	// way wait for the rest of a burst (a review's line comments arrive as
	// separate events) before they go out as one cycle
	// (ADBOT_FEEDBACK_SETTLE, a Go duration such as "10s"). 0 sends each
	// remark at once; unset means DefaultFeedbackSettle. It is a pointer so
	// that an explicit 0 differs from unset.
	FeedbackSettle *time.Duration `yaml:"feedback_settle"`
	// Logging configures the process log.
	Logging LoggingConfig `yaml:"logging"`
	// JobsPage says who may see the live job pages under /jobs
	// (ADBOT_JOBS_PAGE loopback|oauth|off, ADBOT_JOBS_ALLOW,
	// GITHUB_OAUTH_CLIENT_ID, GITHUB_OAUTH_CLIENT_SECRET).
	JobsPage jobpage.Config `yaml:"jobs_page"`
}

// HTTPConfig configures the HTTP listener.
type HTTPConfig struct {
	// Address is the interface to listen on; empty means all.
	Address string `yaml:"address"`
	// Port is the HTTP port (PORT).
	Port int `yaml:"port"`
	// MetricsAddress is host:port of the separate /metrics listener
	// (ADBOT_METRICS_ADDRESS); "off" serves no metrics. It is never the
	// public port: metrics are an internal endpoint.
	MetricsAddress string `yaml:"metrics_address"`
	// MaxBodyBytes bounds a webhook body; larger ones get 413.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxBodiesInFlight bounds the webhook body bytes held at once, over all
	// requests: each reserves its Content-Length (MaxBodyBytes when unknown)
	// before reading, and a request past the bound gets 503 with Retry-After.
	// It must be at least MaxBodyBytes.
	MaxBodiesInFlight int64 `yaml:"max_bodies_in_flight"`
	// BusyRetryAfter is the Retry-After sent with that 503.
	BusyRetryAfter time.Duration `yaml:"busy_retry_after"`
	// IntakeTimeout bounds the handling of one webhook request.
	IntakeTimeout time.Duration `yaml:"intake_timeout"`
	// ReadHeaderTimeout, ReadTimeout, WriteTimeout and IdleTimeout bound connections.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	ReadTimeout       time.Duration `yaml:"read_timeout"`
	WriteTimeout      time.Duration `yaml:"write_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
	// ShutdownTimeout is how long in-flight requests get to finish on shutdown.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// GitHubConfig configures the GitHub App.
type GitHubConfig struct {
	// V3APIURL is the REST API base URL (GITHUB_V3_API_URL): GitHub Enterprise or a local test server.
	V3APIURL string `yaml:"v3_api_url"`
	// AppID is the App's integration id (GITHUB_APP_ID).
	AppID int64 `yaml:"app_id"`
	// PrivateKey is the App's PEM private key (GITHUB_APP_PRIVATE_KEY).
	PrivateKey string `yaml:"private_key"`
	// PrivateKeyFile is a file holding PrivateKey (GITHUB_APP_PRIVATE_KEY_FILE); read at load time.
	PrivateKeyFile string `yaml:"private_key_file"`
	// WebhookSecret signs every delivery (GITHUB_WEBHOOK_SECRET).
	WebhookSecret string `yaml:"webhook_secret"`
	// UserAgent is the base User-Agent of every GitHub request.
	UserAgent string `yaml:"user_agent"`
	// Timeout bounds one GitHub request.
	Timeout time.Duration `yaml:"timeout"`
}

// HasApp reports whether App credentials are configured.
func (g GitHubConfig) HasApp() bool { return g.AppID != 0 || g.PrivateKey != "" }

// NATSConfig configures the bus.
type NATSConfig struct {
	// URL of an external NATS server or cluster (NATS_URL, comma-separated for
	// several); empty starts the embedded server.
	URL string `yaml:"url"`
	// Creds is a NATS credentials file for URL (NATS_CREDS).
	Creds string `yaml:"creds"`
	// Replicas is the JetStream replication factor (3 on a 3-node cluster).
	Replicas int `yaml:"replicas"`
	// Embedded configures the embedded server, used when URL is empty.
	Embedded EmbeddedNATSConfig `yaml:"embedded"`
	// ConnectTimeout bounds the first connection and the bus set-up.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
}

// EmbeddedNATSConfig configures the embedded nats-server.
type EmbeddedNATSConfig struct {
	// Host is the interface runners connect to (ADBOT_NATS_HOST); 0.0.0.0 means every one.
	Host string `yaml:"host"`
	// Port is the client port (ADBOT_NATS_PORT); -1 picks a free one.
	Port int `yaml:"port"`
	// Token, when set, is required from every client (ADBOT_NATS_TOKEN).
	Token string `yaml:"token"`
}

// HubConfig configures the HuggingFace Hub client.
type HubConfig struct {
	// Endpoint is the Hub's base URL (HF_ENDPOINT).
	Endpoint string `yaml:"endpoint"`
	// Token reads gated and private repositories (HF_TOKEN).
	Token string `yaml:"token"`
}

// SweeperConfig configures the redelivery sweeper.
type SweeperConfig struct {
	// Disabled turns the sweeper off (it also stays off without App credentials).
	Disabled bool `yaml:"disabled"`
	// Interval is the time between sweeps.
	Interval time.Duration `yaml:"interval"`
	// Window is how far back a sweep looks.
	Window time.Duration `yaml:"window"`
	// MaxPages bounds one sweep.
	MaxPages int `yaml:"max_pages"`
	// MaxAttempts bounds the redeliveries asked for one delivery.
	MaxAttempts int `yaml:"max_attempts"`
}

// LoggingConfig configures the process log.
type LoggingConfig struct {
	// Level is a zerolog level: debug, info, warn, error.
	Level string `yaml:"level"`
	// Text writes human-readable lines instead of JSON.
	Text bool `yaml:"text"`
}

// DefaultConfig is the configuration with every default filled in.
func DefaultConfig() Config {
	var c Config
	c.setDefaults()
	return c
}

// setDefaults fills every unset field: the one place defaults live.
func (c *Config) setDefaults() {
	def := func(p *time.Duration, d time.Duration) {
		if *p == 0 {
			*p = d
		}
	}
	if c.Server.Port == 0 {
		c.Server.Port = DefaultPort
	}
	if c.Server.MetricsAddress == "" {
		c.Server.MetricsAddress = DefaultMetricsAddress
	}
	if c.Server.MaxBodyBytes == 0 {
		c.Server.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.Server.MaxBodiesInFlight == 0 {
		c.Server.MaxBodiesInFlight = max(DefaultMaxBodiesInFlight, c.Server.MaxBodyBytes)
	}
	def(&c.Server.BusyRetryAfter, DefaultBusyRetryAfter)
	def(&c.Server.IntakeTimeout, DefaultIntakeTimeout)
	def(&c.Server.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	def(&c.Server.ReadTimeout, DefaultReadTimeout)
	def(&c.Server.WriteTimeout, DefaultWriteTimeout)
	def(&c.Server.IdleTimeout, DefaultIdleTimeout)
	def(&c.Server.ShutdownTimeout, DefaultShutdownTimeout)
	if c.GitHub.V3APIURL == "" {
		c.GitHub.V3APIURL = DefaultV3APIURL
	}
	if c.GitHub.UserAgent == "" {
		c.GitHub.UserAgent = DefaultUserAgent
	}
	def(&c.GitHub.Timeout, DefaultGitHubTimeout)
	if c.NATS.Replicas == 0 {
		c.NATS.Replicas = 1
	}
	if c.NATS.Embedded.Host == "" {
		c.NATS.Embedded.Host = DefaultNATSHost
	}
	if c.NATS.Embedded.Port == 0 {
		c.NATS.Embedded.Port = DefaultNATSPort
	}
	def(&c.NATS.ConnectTimeout, DefaultNATSConnectTimeout)
	if c.Hub.Endpoint == "" {
		c.Hub.Endpoint = DefaultHubEndpoint
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.TriggerLabel == "" {
		c.TriggerLabel = DefaultTriggerLabel
	}
	def(&c.Sweeper.Interval, DefaultSweepInterval)
	def(&c.Sweeper.Window, DefaultSweepWindow)
	if c.Sweeper.MaxPages == 0 {
		c.Sweeper.MaxPages = DefaultSweepMaxPages
	}
	if c.Sweeper.MaxAttempts == 0 {
		c.Sweeper.MaxAttempts = DefaultSweepMaxAttempts
	}
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.FeedbackSettle == nil {
		d := DefaultFeedbackSettle
		c.FeedbackSettle = &d
	}
	if c.Logging.Level == "" {
		c.Logging.Level = "info"
	}
	c.JobsPage = c.JobsPage.Normalize()
}

// LoadConfig reads the YAML file at path (none when path is empty), applies
// the environment given by getenv (os.Getenv in production), fills defaults
// and reads the private key file. It does not validate: see Validate.
func LoadConfig(path string, getenv func(string) string) (Config, error) {
	var c Config
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("read config file: %w", err)
		}
		if err := decodeConfig(b, &c); err != nil {
			return Config{}, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	if err := c.applyEnv(getenv); err != nil {
		return Config{}, err
	}
	c.setDefaults()
	if c.GitHub.PrivateKeyFile != "" {
		if c.GitHub.PrivateKey != "" {
			return Config{}, errors.New("config: set the App private key or its file, not both")
		}
		b, err := os.ReadFile(c.GitHub.PrivateKeyFile)
		if err != nil {
			return Config{}, fmt.Errorf("config: read GitHub App private key file: %w", err)
		}
		c.GitHub.PrivateKey = string(b)
	}
	return c, nil
}

// decodeConfig decodes YAML strictly: an unknown key is an error. An empty
// document is an empty configuration.
func decodeConfig(b []byte, c *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("decode yaml: %w", err)
	}
	return nil
}

// EnvKey is one environment variable adbot serve reads.
type EnvKey struct {
	// Name is the variable.
	Name string
	// Default is what applies when it is unset, in words.
	Default string
	// What says what it sets.
	What string
}

// EnvKeys lists every environment variable applyEnv reads, in the order
// `adbot serve --help` prints them. A test holds the two together.
var EnvKeys = []EnvKey{
	{"PORT", strconv.Itoa(DefaultPort), "HTTP port of the webhook, /healthz and /readyz"},
	{"ADBOT_DATA_DIR", DefaultDataDir, "folder of the embedded JetStream store"},
	{"GITHUB_APP_ID", "none (required by serve)", "the GitHub App's id"},
	{"GITHUB_APP_PRIVATE_KEY", "none", "the App's PEM private key itself"},
	{"GITHUB_APP_PRIVATE_KEY_FILE", "none", "a file holding the App's private key (instead of the key itself)"},
	{"GITHUB_WEBHOOK_SECRET", "none (required)", "the secret every delivery is signed with"},
	{"GITHUB_V3_API_URL", DefaultV3APIURL, "GitHub's REST API (GitHub Enterprise: https://HOST/api/v3/)"},
	{"NATS_URL", "none: start the embedded NATS server", "external NATS server or cluster, comma-separated URLs"},
	{"NATS_CREDS", "none", "NATS credentials file for NATS_URL"},
	{"ADBOT_NATS_HOST", DefaultNATSHost, "interface the embedded NATS server listens on"},
	{"ADBOT_NATS_PORT", strconv.Itoa(DefaultNATSPort), "client port of the embedded NATS server (-1: any free port)"},
	{"ADBOT_NATS_TOKEN", "none (warned about off loopback)", "token every client of the embedded NATS server must give"},
	{"HF_ENDPOINT", DefaultHubEndpoint, "the HuggingFace Hub"},
	{"HF_TOKEN", "none", "HuggingFace token for gated and private models"},
	{"ADBOT_TRIGGER_LABEL", DefaultTriggerLabel, "issue label that asks for an onboarding"},
	{"ADBOT_FEEDBACK_SETTLE", DefaultFeedbackSettle.String(), "how long review remarks wait for the rest of a burst (0: at once)"},
	{"ADBOT_LOG_LEVEL", "info", "debug, info, warn or error"},
	{"ADBOT_METRICS_ADDRESS", DefaultMetricsAddress, "host:port of the Prometheus /metrics listener, or off"},
	{"ADBOT_MAX_BODIES_IN_FLIGHT", strconv.Itoa(DefaultMaxBodiesInFlight), "bytes of webhook bodies read at once; past it: 503 with Retry-After"},
	{"ADBOT_JOBS_PAGE", "loopback", "the live job pages /jobs: loopback (local clients only), oauth (GitHub sign-in), or off"},
	{"ADBOT_JOBS_ALLOW", "none", "with oauth: the GitHub logins allowed to see /jobs (comma-separated)"},
	{"GITHUB_OAUTH_CLIENT_ID", "none", "with oauth: the OAuth client id (callback <public URL>/jobs/-/auth/callback)"},
	{"GITHUB_OAUTH_CLIENT_SECRET", "none", "with oauth: the OAuth client secret"},
}

// EnvHelp is the environment section of `adbot serve --help`.
func EnvHelp() string {
	var b strings.Builder
	b.WriteString("Environment (overrides the file; default in brackets):\n")
	for _, k := range EnvKeys {
		fmt.Fprintf(&b, "  %-28s %s [%s]\n", k.Name, k.What, k.Default)
	}
	return b.String()
}

// applyEnv overrides c with every environment variable that is set and non-empty.
func (c *Config) applyEnv(getenv func(string) string) error {
	str := func(key string, p *string) {
		if v := getenv(key); v != "" {
			*p = v
		}
	}
	port := func(key string, p *int) error {
		v := getenv(key)
		if v == "" {
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("config: %s=%q is not a port number", key, v)
		}
		*p = n
		return nil
	}
	if err := port("PORT", &c.Server.Port); err != nil {
		return err
	}
	if err := port("ADBOT_NATS_PORT", &c.NATS.Embedded.Port); err != nil {
		return err
	}
	if v := getenv("GITHUB_APP_ID"); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			return fmt.Errorf("config: GITHUB_APP_ID=%q is not a positive number", v)
		}
		c.GitHub.AppID = id
	}
	if v := getenv("ADBOT_MAX_BODIES_IN_FLIGHT"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return fmt.Errorf("config: ADBOT_MAX_BODIES_IN_FLIGHT=%q is not a positive number of bytes", v)
		}
		c.Server.MaxBodiesInFlight = n
	}
	if v := getenv("ADBOT_FEEDBACK_SETTLE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("config: ADBOT_FEEDBACK_SETTLE=%q is not a duration like 10s", v)
		}
		c.FeedbackSettle = &d
	}
	str("ADBOT_DATA_DIR", &c.DataDir)
	str("GITHUB_APP_PRIVATE_KEY", &c.GitHub.PrivateKey)
	str("GITHUB_APP_PRIVATE_KEY_FILE", &c.GitHub.PrivateKeyFile)
	str("GITHUB_WEBHOOK_SECRET", &c.GitHub.WebhookSecret)
	str("GITHUB_V3_API_URL", &c.GitHub.V3APIURL)
	str("NATS_URL", &c.NATS.URL)
	str("NATS_CREDS", &c.NATS.Creds)
	str("ADBOT_NATS_TOKEN", &c.NATS.Embedded.Token)
	str("ADBOT_NATS_HOST", &c.NATS.Embedded.Host)
	str("HF_ENDPOINT", &c.Hub.Endpoint)
	str("HF_TOKEN", &c.Hub.Token)
	str("ADBOT_TRIGGER_LABEL", &c.TriggerLabel)
	str("ADBOT_LOG_LEVEL", &c.Logging.Level)
	str("ADBOT_METRICS_ADDRESS", &c.Server.MetricsAddress)
	str("ADBOT_JOBS_PAGE", &c.JobsPage.Mode)
	if v := getenv("ADBOT_JOBS_ALLOW"); v != "" {
		c.JobsPage.Allow = jobpage.ParseLogins(v)
	}
	str("GITHUB_OAUTH_CLIENT_ID", &c.JobsPage.OAuthClientID)
	str("GITHUB_OAUTH_CLIENT_SECRET", &c.JobsPage.OAuthClientSecret)
	return nil
}

// Validate checks c. A webhook secret is always required: without one no
// delivery could be verified. requireApp demands App credentials (adbot
// serve); otherwise they are optional but must be complete if given (adbot
// dev, which prints GitHub calls without them).
func (c *Config) Validate(requireApp bool) error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Server.Port < 1 || c.Server.Port > 65535 {
		bad("server port %d is not in 1-65535", c.Server.Port)
	}
	if c.NATS.URL == "" && (c.NATS.Embedded.Port < -1 || c.NATS.Embedded.Port > 65535 || c.NATS.Embedded.Port == 0) {
		bad("embedded NATS port %d is not in 1-65535 (or -1 for any free port)", c.NATS.Embedded.Port)
	}
	if c.NATS.URL == "" && c.NATS.Embedded.Port > 0 && c.NATS.Embedded.Port == c.Server.Port && c.Server.Address == c.NATS.Embedded.Host {
		bad("embedded NATS port and HTTP port are both %d", c.Server.Port)
	}
	if c.NATS.URL == "" && net.ParseIP(c.NATS.Embedded.Host) == nil && c.NATS.Embedded.Host != "localhost" {
		bad("embedded NATS host %q is not an IP address", c.NATS.Embedded.Host)
	}
	if c.NATS.URL != "" {
		for _, u := range strings.Split(c.NATS.URL, ",") {
			if pu, err := url.Parse(strings.TrimSpace(u)); err != nil || pu.Host == "" {
				bad("NATS URL %q is not a URL like nats://host:4222", redactURL(u))
			}
		}
	}
	if c.NATS.Creds != "" {
		if c.NATS.URL == "" {
			bad("NATS_CREDS is set without NATS_URL")
		} else if _, err := os.Stat(c.NATS.Creds); err != nil {
			bad("NATS credentials file: %w", err)
		}
	}
	if c.NATS.Replicas < 1 || c.NATS.Replicas > 5 {
		bad("NATS replicas %d is not in 1-5", c.NATS.Replicas)
	}
	if u, err := url.Parse(c.GitHub.V3APIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("GitHub API URL %q is not an http(s) URL", c.GitHub.V3APIURL)
	}
	if u, err := url.Parse(c.Hub.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("HuggingFace endpoint %q is not an http(s) URL", c.Hub.Endpoint)
	}
	if c.DataDir == "" || filepath.Clean(c.DataDir) == "/" {
		bad("data dir %q is not usable", c.DataDir)
	}
	if c.TriggerLabel == "" {
		bad("trigger label is empty")
	}
	switch {
	case c.GitHub.HasApp():
		if c.GitHub.AppID <= 0 {
			bad("GitHub App private key is set but GITHUB_APP_ID is not")
		}
		if c.GitHub.PrivateKey == "" {
			bad("GITHUB_APP_ID is set but neither GITHUB_APP_PRIVATE_KEY nor GITHUB_APP_PRIVATE_KEY_FILE is")
		} else if err := checkPrivateKey([]byte(c.GitHub.PrivateKey)); err != nil {
			bad("GitHub App private key: %w", err)
		}
	case requireApp:
		bad("GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY (or GITHUB_APP_PRIVATE_KEY_FILE) are required")
	}
	if c.GitHub.WebhookSecret == "" {
		bad("GITHUB_WEBHOOK_SECRET is required: unsigned deliveries are never accepted")
	}
	if c.Server.MetricsAddress != "off" {
		if host, p, err := net.SplitHostPort(c.Server.MetricsAddress); err != nil {
			bad("metrics address %q is not host:port or off", c.Server.MetricsAddress)
		} else if p == strconv.Itoa(c.Server.Port) && (host == "" || host == c.Server.Address) {
			bad("metrics address %q is the public port: metrics must be served apart", c.Server.MetricsAddress)
		}
	}
	if c.Server.MaxBodyBytes < 1 {
		bad("max body bytes %d is not positive", c.Server.MaxBodyBytes)
	}
	if c.Server.MaxBodiesInFlight < c.Server.MaxBodyBytes {
		bad("max bodies in flight %d is less than max body bytes %d: no full-size delivery could be read", c.Server.MaxBodiesInFlight, c.Server.MaxBodyBytes)
	}
	if c.Server.BusyRetryAfter < time.Second {
		bad("busy retry after %s is under a second", c.Server.BusyRetryAfter)
	}
	if c.Workers < 0 {
		bad("workers %d is negative", c.Workers)
	}
	if c.FeedbackSettle != nil && *c.FeedbackSettle < 0 {
		bad("feedback settle %s is negative", *c.FeedbackSettle)
	}
	if c.Sweeper.Interval < time.Minute {
		bad("sweeper interval %s is shorter than a minute", c.Sweeper.Interval)
	}
	if c.Sweeper.Window <= 0 || c.Sweeper.Window > DefaultSweepWindow {
		bad("sweeper window %s is not in (0, 72h]: GitHub keeps three days of deliveries", c.Sweeper.Window)
	}
	if err := c.JobsPage.Normalize().Validate(); err != nil {
		bad("job page: %w", err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("config: %w", errors.Join(errs...))
	}
	return nil
}

// checkPrivateKey checks that b is a PEM RSA private key (PKCS#1 or PKCS#8), as
// GitHub issues them.
func checkPrivateKey(b []byte) error {
	block, _ := pem.Decode(b)
	if block == nil {
		return errors.New("not PEM encoded")
	}
	if _, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return nil
	}
	if _, err := x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
		return fmt.Errorf("not an RSA private key: %w", err)
	}
	return nil
}
