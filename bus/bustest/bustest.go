// Package bustest starts an in-process NATS server with JetStream for tests.
package bustest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nvidia/adbot/bus"
)

// Server starts an embedded nats-server with a JetStream file store under
// t.TempDir(), listening on a random loopback port. It is shut down with the test.
func Server(t testing.TB) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoLog:     true,
		NoSigs:    true,
	})
	if err != nil {
		t.Fatalf("start nats-server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready within 10s")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// Connect dials s and returns a connection closed with the test.
func Connect(t testing.TB, s *server.Server) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatalf("connect to nats: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Start runs a server, connects to it and ensures adbot's resources on it.
func Start(t testing.TB) (*server.Server, *nats.Conn, *bus.Resources) {
	t.Helper()
	s := Server(t)
	nc := Connect(t, s)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := bus.Ensure(ctx, js, bus.Options{})
	if err != nil {
		t.Fatalf("ensure bus resources: %v", err)
	}
	return s, nc, r
}

// Job returns the job stored under key, or nil when there is none; any other
// error fails the test.
func Job(t testing.TB, r *bus.Resources, key string) *bus.Job {
	t.Helper()
	j, _, err := bus.GetJob(context.Background(), r.Jobs, key)
	if errors.Is(err, bus.ErrNoJob) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// CyclesIdle reports whether no cycle waits on any subject or is held
// unacknowledged by a runner.
func CyclesIdle(r *bus.Resources) bool {
	ctx := context.Background()
	for _, n := range bus.GPUSizes {
		c, err := r.Cycles.Consumer(ctx, bus.ConsumerName(n))
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		if err != nil || info.NumPending > 0 || info.NumAckPending > 0 {
			return false
		}
	}
	return true
}
