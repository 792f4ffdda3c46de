package server

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestEnvKeysComplete: the keys `adbot serve --help` lists are exactly the
// ones LoadConfig reads, so none is read without being documented.
func TestEnvKeysComplete(t *testing.T) {
	var read []string
	if _, err := LoadConfig("", func(k string) string { read = append(read, k); return "" }); err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, k := range EnvKeys {
		listed = append(listed, k.Name)
	}
	slices.Sort(read)
	slices.Sort(listed)
	if diff := cmp.Diff(read, listed); diff != "" {
		t.Errorf("keys read (-got) and listed by --help (+want):\n%s", diff)
	}
}

// TestServeHelp: `adbot serve --help` prints every key with its default.
func TestServeHelp(t *testing.T) {
	stderr := os.Stderr
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	os.Stderr = w
	err = ServeCommand(t.Context(), []string{"--help"})
	os.Stderr = stderr
	w.Close()
	var out bytes.Buffer
	if _, rerr := out.ReadFrom(r); rerr != nil {
		t.Fatal(rerr)
	}
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, k := range EnvKeys {
		t.Run(k.Name, func(t *testing.T) {
			line := ""
			for l := range strings.Lines(out.String()) {
				if strings.HasPrefix(strings.TrimSpace(l), k.Name+" ") {
					line = l
				}
			}
			if line == "" || !strings.Contains(line, "["+k.Default+"]") {
				t.Errorf("help line for %s = %q, want it with [%s]", k.Name, line, k.Default)
			}
		})
	}
}

// TestMetricsLoopbackByDefault: without ADBOT_METRICS_ADDRESS metrics listen
// on loopback only; the variable moves them.
func TestMetricsLoopbackByDefault(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"default", nil, "127.0.0.1:9091"},
		{"every interface", map[string]string{"ADBOT_METRICS_ADDRESS": ":9091"}, ":9091"},
		{"off", map[string]string{"ADBOT_METRICS_ADDRESS": "off"}, "off"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := LoadConfig("", func(k string) string { return tc.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.Server.MetricsAddress, tc.want); diff != "" {
				t.Errorf("metrics address (-got +want):\n%s", diff)
			}
		})
	}
}

// TestReadmeListsEveryKey: README.md's configuration table names every
// variable adbot serve reads, with its default.
func TestReadmeListsEveryKey(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range EnvKeys {
		t.Run(k.Name, func(t *testing.T) {
			if !strings.Contains(string(b), "| `"+k.Name+"` |") {
				t.Errorf("README.md has no table row for %s", k.Name)
			}
		})
	}
}
