package sandbox

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
)

// The forwarder without a sandbox: exit statuses, bad arguments, and bytes
// carried from its TCP port to the unix socket.
func TestForwardMain(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want int
		msg  string
	}{
		{"exit status", []string{"127.0.0.1:0", "/nonexistent.sock", "--", "sh", "-c", "exit 3"}, 3, ""},
		{"killed", []string{"127.0.0.1:0", "/nonexistent.sock", "--", "sh", "-c", "kill -TERM $$"}, 128 + 15, ""},
		{"no command", []string{"127.0.0.1:0", "/x.sock", "--"}, 125, "want ADDR SOCKET"},
		{"missing --", []string{"127.0.0.1:0", "/x.sock", "true", "x"}, 125, "want ADDR SOCKET"},
		{"bad address", []string{"no-such-address", "/x.sock", "--", "true"}, 125, "listen"},
		{"no program", []string{"127.0.0.1:0", "/x.sock", "--", "/nonexistent/prog"}, 127, "start"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr strings.Builder
			if got := forwardMain(tc.args, &stderr); got != tc.want {
				t.Errorf("exit %d, want %d (%s)", got, tc.want, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.msg) {
				t.Errorf("stderr %q, want %q in it", stderr.String(), tc.msg)
			}
		})
	}
}

func TestForwardCarries(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "up.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // echoes one connection upper-cased; ends when ln closes
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b := make([]byte, 64)
		n, _ := c.Read(b)
		_, _ = c.Write([]byte(strings.ToUpper(string(b[:n]))))
	}()
	// Find a free port, then let the forwarder listen there while its command talks to it.
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := probe.Addr().String()
	probe.Close()
	_, port, _ := net.SplitHostPort(addr)
	script := `exec 3<>/dev/tcp/127.0.0.1/` + port + `; printf hello >&3; read -r -n 5 x <&3; test "$x" = HELLO`
	var stderr strings.Builder
	if got := forwardMain([]string{addr, sock, "--", "bash", "-c", script}, &stderr); got != 0 {
		t.Errorf("exit %d: the command did not get its bytes back through the socket (%s)", got, stderr.String())
	}
}
