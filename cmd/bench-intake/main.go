// Command bench-intake measures adbot's webhook intake on loopback.
//
// It starts the server in this process (embedded NATS with JetStream on a file
// store in a temporary directory, the command worker) with a canned GitHub and
// a fake HuggingFace Hub on loopback (in this process too, or with -fakes
// process in one of their own), then runs itself again as a separate client
// process that posts signed issues.opened deliveries, each for its own issue.
// The consumer that reads what the server produces has its own NATS
// connection, as a runner does, and like busy runners holds the last -ack-lag
// messages unacknowledged. It measures, server side, the time from a request's arrival to
// what it produces being readable by a consumer:
//
//	-mode full    arrival -> the onboarding cycle readable on adbot.cycles.gpus.1
//	-mode intake  arrival -> the command readable on adbot.commands (no worker)
//
// and the sustained rate with nothing lost (messages read == deliveries accepted).
//
//	go run ./cmd/bench-intake -mode full -rate 500 -duration 10s
//	go run ./cmd/bench-intake -mode full -saturate -n 20000 -conns 64
//
// To give the server two CPUs of its own on a larger host, pin it and send
// the helpers elsewhere:
//
//	taskset -c 0,1 bench-intake -fakes process -helper-cpus 2-15 -mode full -saturate -n 30000
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/server"
)

type options struct {
	mode     string
	rate     int
	duration time.Duration
	saturate bool
	n        int
	conns    int
	workers  int
	wait     time.Duration
	// ackLag is how many messages the consumer holds before acknowledging the
	// oldest.
	ackLag int
	// dir is where the store's temporary directory is made.
	dir string
	// cpuprofile is where the server process's CPU profile goes;
	// mutexprofile and blockprofile where its lock-contention and blocking
	// profiles go.
	cpuprofile   string
	mutexprofile string
	blockprofile string
	// fakes serves the canned GitHub and Hub from a process of their own
	// (as the real ones are elsewhere); helperCPUs pins that process and the
	// client's to those CPUs (taskset list), so that the server process,
	// pinned by the caller, has its CPUs to itself.
	fakes      string
	helperCPUs string
	// client side
	client     bool
	fakesServe bool
	url        string
	first      int
}

func main() {
	var o options
	flag.StringVar(&o.mode, "mode", "full", "what to time: full (arrival to cycle readable) or intake (arrival to command readable)")
	flag.IntVar(&o.rate, "rate", 500, "deliveries per second (paced mode)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long to send (paced mode)")
	flag.BoolVar(&o.saturate, "saturate", false, "send -n deliveries as fast as -conns connections allow")
	flag.IntVar(&o.n, "n", 20000, "deliveries to send (saturation mode)")
	flag.IntVar(&o.conns, "conns", 64, "concurrent client connections")
	flag.IntVar(&o.workers, "workers", server.DefaultWorkers, "commands the worker carries out at once (full mode)")
	flag.DurationVar(&o.wait, "wait", 30*time.Second, "how long to wait for the last messages after sending")
	flag.IntVar(&o.ackLag, "ack-lag", 256, "messages the consumer holds unacknowledged, as busy runners hold cycles (0: ack each at once)")
	flag.StringVar(&o.dir, "dir", "", "parent `directory` of the JetStream store (default: the system temp dir)")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write the server process's CPU profile to `file`")
	flag.StringVar(&o.mutexprofile, "mutexprofile", "", "write the server process's lock-contention profile to `file`")
	flag.StringVar(&o.blockprofile, "blockprofile", "", "write the server process's blocking profile to `file`")
	flag.StringVar(&o.fakes, "fakes", "inline", "where the canned GitHub and Hub run: inline (the server's process) or process (their own)")
	flag.StringVar(&o.helperCPUs, "helper-cpus", "", "pin the client and fakes processes to these `CPUs` (a taskset list, e.g. 2-15)")
	flag.BoolVar(&o.client, "client", false, "internal: run as the sending client process")
	flag.BoolVar(&o.fakesServe, "serve-fakes", false, "internal: run as the fakes process")
	flag.StringVar(&o.url, "url", "", "internal: webhook URL (client)")
	flag.IntVar(&o.first, "first", 1, "internal: first issue number (client)")
	flag.Parse()
	var err error
	switch {
	case o.client:
		err = runClient(o)
	case o.fakesServe:
		err = serveFakes()
	default:
		err = runBench(o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-intake:", err)
		os.Exit(1)
	}
}

// ---- the client process ----

// clientReport is what the client process prints on stdout as JSON.
type clientReport struct {
	Sent      int            `json:"sent"`
	Statuses  map[string]int `json:"statuses"`
	Elapsed   time.Duration  `json:"elapsed"`
	RTT       []float64      `json:"rtt_ms"` // round trip of each request, client side
	Behind    int            `json:"behind"` // paced sends that left late by over 5 ms
	FirstSent time.Time      `json:"first_sent"`
}

func payload(issue int) []byte {
	return fmt.Appendf(nil, `{"action":"opened","issue":{"number":%d,"title":"onboard Qwen/Qwen3-0.6B","body":"","state":"open","author_association":"MEMBER","user":{"login":"alice","id":7,"type":"User"}},"repository":{"id":1,"name":"TensorRT-LLM","full_name":"NVIDIA/TensorRT-LLM","owner":{"login":"NVIDIA","id":2,"type":"Organization"}},"sender":{"login":"alice","id":7,"type":"User"},"installation":{"id":1}}`, issue)
}

func runClient(o options) error {
	secret := os.Getenv("BENCH_WEBHOOK_SECRET")
	if secret == "" || o.url == "" {
		return errors.New("client needs -url and $BENCH_WEBHOOK_SECRET")
	}
	total := o.n
	var interval time.Duration
	if !o.saturate {
		total = int(float64(o.rate) * o.duration.Seconds())
		interval = time.Second / time.Duration(o.rate)
	}
	hc := &http.Client{
		Timeout:   15 * time.Second,
		Transport: &http.Transport{MaxIdleConns: o.conns, MaxIdleConnsPerHost: o.conns, IdleConnTimeout: time.Minute},
	}
	jobs := make(chan int, o.conns*4)
	var mu sync.Mutex
	rep := clientReport{Statuses: map[string]int{}, RTT: make([]float64, 0, total)}
	var wg sync.WaitGroup
	for range o.conns {
		wg.Go(func() {
			for issue := range jobs {
				body := payload(issue)
				req, err := server.NewDeliveryRequest(context.Background(), o.url, secret, "issues", fmt.Sprintf("bench-%d", issue), body)
				if err != nil {
					panic(err)
				}
				t0 := time.Now()
				resp, err := hc.Do(req)
				rtt := time.Since(t0)
				status := "error"
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					status = fmt.Sprint(resp.StatusCode)
				}
				mu.Lock()
				rep.Statuses[status]++
				rep.RTT = append(rep.RTT, float64(rtt.Microseconds())/1000)
				mu.Unlock()
			}
		})
	}
	start := time.Now()
	rep.FirstSent = start
	for i := range total {
		if interval > 0 {
			at := start.Add(time.Duration(i) * interval)
			if d := time.Until(at); d > 0 {
				time.Sleep(d)
			} else if d < -5*time.Millisecond {
				rep.Behind++
			}
		}
		jobs <- o.first + i
	}
	close(jobs)
	wg.Wait()
	rep.Sent = total
	rep.Elapsed = time.Since(start)
	return json.NewEncoder(os.Stdout).Encode(rep)
}

// ---- the server process ----

func runBench(o options) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, err := os.MkdirTemp(o.dir, "adbot-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	secretBytes := make([]byte, 16)
	_, _ = rand.Read(secretBytes)
	secret := hex.EncodeToString(secretBytes)

	self, err := os.Executable()
	if err != nil {
		return err
	}
	var ghURL, hubURL string
	switch o.fakes {
	case "inline":
		gh := httptest.NewServer(server.CannedGitHub())
		defer gh.Close()
		hub := httptest.NewServer(http.HandlerFunc(fakeHub))
		defer hub.Close()
		ghURL, hubURL = gh.URL, hub.URL
	case "process":
		fk := helper(ctx, o, self, "-serve-fakes")
		in, err := fk.StdinPipe() // the fakes stop when it closes
		if err != nil {
			return err
		}
		defer func() { in.Close(); _ = fk.Wait() }()
		out, err := fk.StdoutPipe()
		if err != nil {
			return err
		}
		if err := fk.Start(); err != nil {
			return fmt.Errorf("fakes process: %w", err)
		}
		var urls fakeURLs
		if err := json.NewDecoder(out).Decode(&urls); err != nil {
			return fmt.Errorf("fakes process: %w", err)
		}
		ghURL, hubURL = urls.GitHub, urls.Hub
	default:
		return fmt.Errorf("unknown -fakes %q: want process or inline", o.fakes)
	}

	cfg := server.DefaultConfig()
	cfg.DataDir = dir
	cfg.NATS.Embedded.Host = "127.0.0.1"
	cfg.NATS.Embedded.Port = -1
	cfg.GitHub.AppID = 1
	cfg.GitHub.PrivateKey = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	cfg.GitHub.WebhookSecret = secret
	cfg.GitHub.V3APIURL = ghURL + "/api/v3/"
	cfg.Hub.Endpoint = hubURL
	cfg.Sweeper.Disabled = true
	cfg.Server.MetricsAddress = "off"
	cfg.Workers = o.workers

	var arrivals sync.Map // delivery id -> time.Time
	record := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if id := r.Header.Get("X-GitHub-Delivery"); id != "" {
				arrivals.Store(id, time.Now())
			}
			next.ServeHTTP(w, r)
		})
	}
	log := zerolog.New(os.Stderr).Level(zerolog.ErrorLevel).With().Timestamp().Logger()
	opts := []server.Option{server.WithLogger(log), server.WithMiddleware(record)}
	switch o.mode {
	case "full":
	case "intake":
		opts = append(opts, server.WithoutWorker())
	default:
		return fmt.Errorf("unknown -mode %q: want full or intake", o.mode)
	}
	s, err := server.New(cfg, opts...)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.Close()
		return err
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(log.WithContext(ctx), ln) }()
	base := "http://" + ln.Addr().String()
	if err := waitReady(ctx, base+server.ReadyRoute); err != nil {
		return err
	}

	// The consumer: the cycle stream's 1-GPU consumer, as a runner reads it,
	// or the command stream's consumer when the worker is off. Like a runner
	// it has its own connection to the NATS server, over loopback TCP.
	snc, _ := s.Bus()
	nc, err := nats.Connect(snc.ConnectedUrl(), nats.Name("bench-intake consumer"))
	if err != nil {
		return fmt.Errorf("consumer connection: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	var cons jetstream.Consumer
	if o.mode == "full" {
		cons, err = js.Consumer(ctx, bus.CycleStream, bus.ConsumerName(1))
	} else {
		cons, err = js.Consumer(ctx, bus.CommandStream, bus.CommandConsumer)
	}
	if err != nil {
		return err
	}
	var (
		mu       sync.Mutex
		lat      []float64
		last     time.Time
		received atomic.Int64
		unknown  atomic.Int64
	)
	held := &ackQueue{lag: o.ackLag}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		now := time.Now()
		var id string
		if o.mode == "full" {
			var c bus.Cycle
			if json.Unmarshal(m.Data(), &c) == nil {
				id = c.DeliveryID
			}
		} else {
			var c bus.Command
			if json.Unmarshal(m.Data(), &c) == nil {
				id = c.DeliveryID
			}
		}
		held.ack(m)
		v, ok := arrivals.Load(id)
		if !ok {
			unknown.Add(1)
			return
		}
		mu.Lock()
		lat = append(lat, float64(now.Sub(v.(time.Time)).Microseconds())/1000)
		last = now
		mu.Unlock()
		received.Add(1)
	}, jetstream.PullMaxMessages(1000))
	if err != nil {
		return err
	}
	defer cc.Stop()

	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	if o.mutexprofile != "" {
		runtime.SetMutexProfileFraction(5)
		defer writeProfile("mutex", o.mutexprofile)
	}
	if o.blockprofile != "" {
		runtime.SetBlockProfileRate(int(50 * time.Microsecond))
		defer writeProfile("block", o.blockprofile)
	}

	// The client, in its own process.
	args := []string{"-client", "-url", base + server.WebhookRoute, "-conns", fmt.Sprint(o.conns)}
	if o.saturate {
		args = append(args, "-saturate", "-n", fmt.Sprint(o.n))
	} else {
		args = append(args, "-rate", fmt.Sprint(o.rate), "-duration", o.duration.String())
	}
	cmd := helper(ctx, o, self, args...)
	cmd.Env = append(os.Environ(), "BENCH_WEBHOOK_SECRET="+secret)
	cmd.Stderr = os.Stderr
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("client process: %w", err)
	}
	var rep clientReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		return fmt.Errorf("client report %q: %w", out.String(), err)
	}
	accepted := int64(rep.Statuses["200"])
	deadline := time.Now().Add(o.wait)
	for received.Load() < accepted && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cc.Stop()
	held.flush()
	cancel()
	if err := <-served; err != nil {
		return fmt.Errorf("server: %w", err)
	}

	mu.Lock()
	defer mu.Unlock()
	var firstArrival time.Time
	arrivals.Range(func(_, v any) bool {
		if t := v.(time.Time); firstArrival.IsZero() || t.Before(firstArrival) {
			firstArrival = t
		}
		return true
	})
	what := "cycle readable on " + bus.CycleSubject(1)
	if o.mode == "intake" {
		what = "command readable on " + bus.CommandSubject
	}
	fmt.Printf("adbot bench-intake: mode=%s %s conns=%d workers=%d fakes=%s GOMAXPROCS=%d NumCPU=%d\n",
		o.mode, map[bool]string{true: fmt.Sprintf("saturate n=%d", o.n), false: fmt.Sprintf("rate=%d/s duration=%s", o.rate, o.duration)}[o.saturate],
		o.conns, o.workers, o.fakes, runtime.GOMAXPROCS(0), runtime.NumCPU())
	fmt.Printf("  sent %d in %s (%.0f/s offered), answers %v, paced sends late >5ms: %d\n",
		rep.Sent, rep.Elapsed.Round(time.Millisecond), float64(rep.Sent)/rep.Elapsed.Seconds(), rep.Statuses, rep.Behind)
	lost := accepted - received.Load()
	fmt.Printf("  %s: %d of %d accepted (lost %d, unmatched %d)\n", what, received.Load(), accepted, lost, unknown.Load())
	if len(lat) > 0 {
		slices.Sort(lat)
		fmt.Printf("  arrival -> %s: p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms\n",
			what, pct(lat, 50), pct(lat, 90), pct(lat, 99), lat[len(lat)-1])
		span := last.Sub(firstArrival)
		fmt.Printf("  sustained: %.0f deliveries/s end to end (%d in %s, first arrival to last readable)\n",
			float64(received.Load())/span.Seconds(), received.Load(), span.Round(time.Millisecond))
	}
	if len(rep.RTT) > 0 {
		slices.Sort(rep.RTT)
		fmt.Printf("  client round trip: p50 %.2f ms  p99 %.2f ms\n", pct(rep.RTT, 50), pct(rep.RTT, 99))
	}
	if lost != 0 {
		return fmt.Errorf("%d accepted deliveries never became readable", lost)
	}
	return nil
}

// writeProfile writes the named runtime profile to path.
func writeProfile(name, path string) {
	f, err := os.Create(path)
	if err == nil {
		err = pprof.Lookup(name).WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench-intake: %s profile: %v\n", name, err)
	}
}

func pct(sorted []float64, p float64) float64 {
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

func waitReady(ctx context.Context, url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return errors.New("server not ready within 30s")
}

// ackQueue acknowledges messages lag behind: a work-queue stream that a
// consumer empties on every message makes nats-server remove and create the
// stream's last block file each time (an open(2) and an unlink(2) per
// message), which a stream of cycles waiting for busy runners never does.
type ackQueue struct {
	lag  int
	mu   sync.Mutex
	msgs []jetstream.Msg
}

func (q *ackQueue) ack(m jetstream.Msg) {
	q.mu.Lock()
	q.msgs = append(q.msgs, m)
	var old jetstream.Msg
	if len(q.msgs) > q.lag {
		old, q.msgs = q.msgs[0], q.msgs[1:]
	}
	q.mu.Unlock()
	if old != nil {
		_ = old.Ack()
	}
}

// flush acknowledges the messages still held.
func (q *ackQueue) flush() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, m := range q.msgs {
		_ = m.Ack()
	}
	q.msgs = nil
}

// helper is a command running this program again with args, pinned to
// -helper-cpus when set.
func helper(ctx context.Context, o options, self string, args ...string) *exec.Cmd {
	if o.helperCPUs != "" {
		args = append([]string{"-c", o.helperCPUs, self}, args...)
		self = "taskset"
	}
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Stderr = os.Stderr
	return cmd
}

// fakeURLs is what the fakes process prints on stdout once it serves.
type fakeURLs struct {
	GitHub string `json:"github"`
	Hub    string `json:"hub"`
}

// serveFakes serves the canned GitHub and Hub on loopback until stdin closes.
func serveFakes() error {
	gh := httptest.NewServer(server.CannedGitHub())
	defer gh.Close()
	hub := httptest.NewServer(http.HandlerFunc(fakeHub))
	defer hub.Close()
	if err := json.NewEncoder(os.Stdout).Encode(fakeURLs{GitHub: gh.URL, Hub: hub.URL}); err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

// fakeHub answers the Hub's model API for Qwen/Qwen3-0.6B-like models: a
// public, ungated, 0.75 B parameter Qwen3ForCausalLM without remote code.
func fakeHub(w http.ResponseWriter, r *http.Request) {
	id, ok := strings.CutPrefix(r.URL.Path, "/api/models/")
	if !ok {
		if strings.HasSuffix(r.URL.Path, "/config.json") {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"architectures":["Qwen3ForCausalLM"],"model_type":"qwen3","num_hidden_layers":28,"hidden_size":1024,"torch_dtype":"bfloat16","tie_word_embeddings":true}`))
			return
		}
		http.NotFound(w, r)
		return
	}
	id, _, _ = strings.Cut(id, "/revision/")
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"id":%q,"modelId":%q,"sha":"c1899de289a04d12100db370d81485cdf75e47ca","private":false,"gated":false,"disabled":false,"pipeline_tag":"text-generation","library_name":"transformers","tags":["transformers","safetensors","qwen3","text-generation"],"config":{"architectures":["Qwen3ForCausalLM"],"model_type":"qwen3"},"siblings":[{"rfilename":"config.json"},{"rfilename":"model.safetensors"}],"safetensors":{"parameters":{"BF16":751632384},"total":751632384}}`, id, id)
}
