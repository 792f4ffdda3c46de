package server

import (
	"context"
	"github.com/nvidia/adbot/runners"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDevCommand starts adbot dev without App credentials or a webhook
// secret, checks that it serves and prints GitHub calls, and stops it.
func TestDevCommand(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := t.TempDir()
	for k, v := range map[string]string{
		"ADBOT_DATA_DIR": dir, "ADBOT_NATS_PORT": "-1", "ADBOT_METRICS_ADDRESS": "off", "GITHUB_WEBHOOK_SECRET": "",
		"GITHUB_APP_ID": "", "GITHUB_APP_PRIVATE_KEY": "", "GITHUB_APP_PRIVATE_KEY_FILE": "", "NATS_URL": "",
		"ADBOT_TRTLLM_REMOTE": filepath.Join(dir, "no-such-remote.git"), "ADBOT_GPUS": "none",
	} {
		t.Setenv(k, v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- DevCommand(nopWorkflow)(ctx, []string{"--port", strconv.Itoa(port)}) }()
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(base + ReadyRoute)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("adbot dev not ready: %v (returned: %v)", err, func() error {
				select {
				case err := <-done:
					return err
				default:
					return nil
				}
			}())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Unsigned deliveries are refused in dev too.
	resp, err := http.Post(base+WebhookRoute, "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unsigned delivery to dev = %d, want 401", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("adbot dev: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("adbot dev did not stop within 30s of cancel")
	}
}

// nopWorkflow stands for the onboarding workflow in tests of the commands'
// wiring, which take no cycle.
func nopWorkflow() (runners.Workflow, error) {
	return runners.WorkflowFunc(func(context.Context, *runners.Cycle) error { return nil }), nil
}
