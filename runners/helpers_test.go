package runners_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/bus/bustest"
	"github.com/nvidia/adbot/internal/fakegithub"
	"github.com/nvidia/adbot/internal/gittest"
)

// Test set-up: an embedded NATS server with short lease and ack times, a
// local bare repository standing for the TensorRT-LLM remote, a fake GitHub,
// and a stand-in token broker that grants a token only to the lease holder.

const (
	testOwner = "NVIDIA"
	testRepo  = "TensorRT-LLM"
	// Short enough that a killed runner's cycle moves on in about a second.
	testAckWait  = time.Second
	testLeaseTTL = 2 * time.Second
)

type env struct {
	t      *testing.T
	srv    *server.Server
	nc     *nats.Conn
	res    *bus.Resources
	gh     *fakegithub.Server
	remote string
	// granted counts tokens handed out, refused those refused.
	granted, refused chan string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := bus.Ensure(ctx, js, bus.Options{CycleAckWait: testAckWait, LeaseTTL: testLeaseTTL})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, srv: s, nc: nc, res: res, gh: fakegithub.New(t), remote: gittest.BareRepo(t, "TensorRT-LLM stand-in\n"),
		granted: make(chan string, 10000), refused: make(chan string, 10000)}
	e.broker()
	return e
}

// broker answers token requests as the server does: only for the runner
// that holds the job's lease and proves it with the lease's secret.
func (e *env) broker() {
	sub, err := e.nc.Subscribe(bus.TokenSubject, func(m *nats.Msg) {
		var req bus.TokenRequest
		_ = json.Unmarshal(m.Data, &req)
		reply := bus.TokenReply{Error: "nobody holds the lease"}
		if ent, err := e.res.Leases.Get(context.Background(), req.JobKey); err == nil {
			var l bus.Lease
			_ = json.Unmarshal(ent.Value(), &l)
			if l.Runner == req.Runner && bus.LeaseProven(l, req.Proof) {
				reply = bus.TokenReply{Token: "ghs_testtoken_" + req.Runner, Expires: time.Now().Add(time.Hour)}
			} else {
				reply.Error = "runner " + req.Runner + " does not hold the lease"
			}
		}
		if reply.Token != "" {
			e.granted <- req.Runner
		} else {
			e.refused <- req.Runner
		}
		b, _ := json.Marshal(reply)
		_ = m.Respond(b)
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = sub.Unsubscribe() })
}

// addJob creates a job for issue with a status comment and enqueues its first cycle.
func (e *env) addJob(issue, gpus int) string {
	e.t.Helper()
	ctx := context.Background()
	sc := e.gh.AddComment(testOwner, testRepo, issue, "adbot[bot]", "[AGENT] status")
	key := bus.JobKey(testOwner, testRepo, issue)
	j := &bus.Job{Key: key, Owner: testOwner, Repo: testRepo, Issue: issue, InstallationID: 1,
		ModelID: "Qwen/Qwen3-0.6B", GPUs: gpus, Requester: "octocat", Status: bus.StatusQueued, StatusCommentID: sc.ID}
	if _, err := bus.CreateJob(ctx, e.res.Jobs, j); err != nil {
		e.t.Fatal(err)
	}
	if _, err := bus.Enqueue(ctx, e.res, key, bus.KindOnboard, nil, "", nil); err != nil {
		e.t.Fatal(err)
	}
	return key
}

func (e *env) job(key string) *bus.Job {
	e.t.Helper()
	j := bustest.Job(e.t, e.res, key)
	if j == nil {
		e.t.Fatalf("no job %s", key)
	}
	return j
}

// queueEmpty reports whether no cycle waits or is held unacknowledged.
func (e *env) queueEmpty() bool { return bustest.CyclesIdle(e.res) }

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testLogger(t *testing.T) context.Context {
	w := zerolog.ConsoleWriter{Out: testWriter{t}, NoColor: true}
	return zerolog.New(w).With().Timestamp().Logger().Level(zerolog.InfoLevel).WithContext(context.Background())
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

var errBoom = errors.New("boom")
