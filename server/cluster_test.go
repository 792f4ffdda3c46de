package server

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/nvidia/adbot/internal/fakegithub"
)

// freePorts reserves n loopback ports and releases them for the caller to use.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// startCluster starts a 3-node JetStream cluster on loopback, as
// deploy/nats-cluster.conf describes one, and returns its client URLs.
func startCluster(t *testing.T) ([]*natsserver.Server, []string) {
	t.Helper()
	routes := freePorts(t, 3)
	var routeURLs []string
	for _, p := range routes {
		routeURLs = append(routeURLs, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	var servers []*natsserver.Server
	var urls []string
	for i := range 3 {
		o := &natsserver.Options{
			ServerName: fmt.Sprintf("adbot-n%d", i+1),
			Host:       "127.0.0.1",
			Port:       natsserver.RANDOM_PORT,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoLog:      true,
			NoSigs:     true,
			Cluster:    natsserver.ClusterOpts{Name: "adbot", Host: "127.0.0.1", Port: routes[i]},
			Routes:     natsserver.RoutesFromStr(strings.Join(routeURLs, ",")),
		}
		ns, err := natsserver.NewServer(o)
		if err != nil {
			t.Fatal(err)
		}
		ns.Start()
		t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
		if !ns.ReadyForConnections(10 * time.Second) {
			t.Fatalf("node %d not ready", i+1)
		}
		servers = append(servers, ns)
		urls = append(urls, ns.ClientURL())
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		leader := false
		for _, ns := range servers {
			leader = leader || ns.JetStreamIsLeader()
		}
		if leader {
			return servers, urls
		}
		if time.Now().After(deadline) {
			t.Fatal("JetStream cluster elected no meta leader within 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestClusterReplicas runs the server on a 3-node cluster with three
// replicas: deliveries are queued, and still are with one node down.
func TestClusterReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node JetStream cluster")
	}
	servers, urls := startCluster(t)
	gh := fakegithub.New(t)
	cfg := testConfig(t, gh.URL())
	cfg.NATS.URL = strings.Join(urls, ",")
	cfg.NATS.Replicas = 3
	s, base := startServer(t, cfg, func(s *Server) { s.noWorker = true })
	info, err := s.res.Commands.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("command stream: %d replicas, cluster %+v; want 3", info.Config.Replicas, info.Cluster)
	}
	deliver := func(guid string, issue int) int {
		body := onboardIssue(issue, "Qwen/Qwen3-0.6B")
		status, _ := post(t, base+WebhookRoute, signed(cfg.GitHub.WebhookSecret, "issues", guid, body), body)
		return status
	}
	if status := deliver("c-1", 1); status != http.StatusOK {
		t.Fatalf("delivery = %d, want 200", status)
	}
	// Stop a node the server is not connected to: the stream keeps a quorum.
	connected := s.nc.ConnectedServerName()
	for _, ns := range servers {
		if ns.Name() != connected {
			ns.Shutdown()
			break
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for deliver("c-2", 2) != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("no delivery queued within 20s of losing one of three nodes")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := commandCount(t, s); got != 2 {
		t.Errorf("commands = %d, want 2", got)
	}
}
