package sandbox_test

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"time"
)

// The stand-in is this test binary run again, inside a sandbox, with
// standinEnv set: it tries what the agent, pytest or the end-to-end run
// might try and prints one JSON line per attempt. Being Go, it needs no
// shell tools, Python or curl on the host.
const standinEnv = "ADBOT_SANDBOX_STANDIN"

// attempt is one thing the stand-in tried.
type attempt struct {
	Op  string `json:"op"`
	Arg string `json:"arg"`
	OK  bool   `json:"ok"`
	Out string `json:"out,omitempty"`
	Err string `json:"err,omitempty"`
}

// standin runs ops given as "op=arg" and exits.
func standin(ops []string) {
	enc := json.NewEncoder(os.Stdout)
	for _, o := range ops {
		op, arg, _ := strings.Cut(o, "=")
		out, err := try(op, arg)
		a := attempt{Op: op, Arg: arg, OK: err == nil, Out: out}
		if err != nil {
			a.Err = err.Error()
		}
		_ = enc.Encode(a)
	}
	os.Exit(0)
}

func try(op, arg string) (string, error) {
	switch op {
	case "write":
		return "", os.WriteFile(arg, []byte("written from inside\n"), 0o644)
	case "read":
		b, err := os.ReadFile(arg)
		return string(b), err
	case "list":
		es, err := os.ReadDir(arg)
		var names []string
		for _, e := range es {
			names = append(names, e.Name())
		}
		sort.Strings(names)
		return strings.Join(names, " "), err
	case "env":
		v, ok := os.LookupEnv(arg)
		if !ok {
			return "", fmt.Errorf("%s unset", arg)
		}
		return v, nil
	case "dial":
		c, err := net.DialTimeout("tcp", arg, 5*time.Second)
		if err == nil {
			c.Close()
		}
		return "", err
	case "socket": // any socket at all beyond loopback: a UDP "connection" needs a route
		c, err := net.Dial("udp", arg)
		if err == nil {
			c.Close()
		}
		return "", err
	case "unix":
		c, err := net.Dial("unix", arg)
		if err == nil {
			c.Close()
		}
		return "", err
	case "get", "gettls": // through the environment's proxy, as the agent's HTTP client does
		// Go's ProxyFromEnvironment skips the proxy for loopback hosts, which
		// the test's servers are: use HTTP(S)_PROXY for every host.
		proxy := func(r *http.Request) (*url.URL, error) {
			v := os.Getenv("HTTP_PROXY")
			if r.URL.Scheme == "https" {
				v = os.Getenv("HTTPS_PROXY")
			}
			if v == "" {
				return nil, nil
			}
			return url.Parse(v)
		}
		tr := &http.Transport{Proxy: proxy, TLSClientConfig: &tls.Config{InsecureSkipVerify: op == "gettls"}}
		cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		resp, err := cl.Get(arg)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return string(b), fmt.Errorf("status %d", resp.StatusCode)
		}
		return string(b), nil
	case "mknod": // a GPU's node the sandbox did not give
		return "", syscall.Mknod(arg, syscall.S_IFCHR|0o666, 195<<8|7)
	case "orphan": // leave a process behind, in a session of its own
		self, err := os.Executable()
		if err != nil {
			return "", err
		}
		c := exec.Command(self, "hang="+arg)
		c.Env = os.Environ()
		c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := c.Start(); err != nil {
			return "", err
		}
		return fmt.Sprint(c.Process.Pid), c.Process.Release()
	case "hang":
		time.Sleep(10 * time.Minute)
		return "", nil
	}
	return "", fmt.Errorf("unknown op %q", op)
}
