package proc_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nvidia/adbot/runners/proc"
)

// testSecret is the secret the runners of these tests redact, made at run
// time: 18 characters, like a short token, so that it can straddle a cut.
var testSecret = func() string {
	b := make([]byte, 7)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return "tok_" + hex.EncodeToString(b)
}()

func newRunner(t *testing.T) (*proc.Runner, *[]proc.Chunk) {
	var mu sync.Mutex
	var chunks []proc.Chunk
	r := &proc.Runner{
		LogDir:   t.TempDir(),
		Redactor: proc.NewRedactor(testSecret),
		Sink: func(c proc.Chunk) {
			mu.Lock()
			defer mu.Unlock()
			chunks = append(chunks, c)
		},
		Grace: 500 * time.Millisecond,
	}
	return r, &chunks
}

func TestRunArgvIsNotAShell(t *testing.T) {
	r, _ := newRunner(t)
	res, err := r.Run(context.Background(), proc.Cmd{Name: "echo", Args: []string{"echo", "$(id); rm -rf /tmp/x", "`x`"}})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := os.ReadFile(res.Stdout)
	if got, want := string(out), "$(id); rm -rf /tmp/x `x`\n"; got != want {
		t.Errorf("stdout = %q, want %q", got, want)
	}
}

func TestRunMinimalEnvironment(t *testing.T) {
	t.Setenv("NATS_CREDS", "/secret/creds")
	t.Setenv("GITHUB_APP_PRIVATE_KEY", "-----BEGIN")
	t.Setenv("HF_HOME", "/data/hf")
	r, _ := newRunner(t)
	r.PassEnv = []string{"HF_HOME"}
	res, err := r.Run(context.Background(), proc.Cmd{Name: "env", Args: []string{"env"}, Env: []string{"CUDA_VISIBLE_DEVICES=2,3"}})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := os.ReadFile(res.Stdout)
	for _, bad := range []string{"NATS_CREDS", "GITHUB_APP_PRIVATE_KEY"} {
		if strings.Contains(string(out), bad) {
			t.Errorf("child environment holds %s:\n%s", bad, out)
		}
	}
	for _, good := range []string{"HF_HOME=/data/hf", "CUDA_VISIBLE_DEVICES=2,3", "PATH="} {
		if !strings.Contains(string(out), good) {
			t.Errorf("child environment lacks %s:\n%s", good, out)
		}
	}
}

func TestRunOutputOrderedCompleteRedacted(t *testing.T) {
	r, chunks := newRunner(t)
	// 5000 numbered lines on stdout, a secret on both streams.
	script := `for i in $(seq 1 5000); do echo "line $i"; done; echo "token ` + testSecret + ` here"; echo "err ` + testSecret + `" >&2; exit 3`
	res, err := r.Run(context.Background(), proc.Cmd{Name: "many lines", Args: []string{"sh", "-c", script}})
	var ee *exec.ExitError
	if !errors.As(err, &ee) || res.ExitCode != 3 {
		t.Fatalf("err = %v, exit %d; want exit status 3", err, res.ExitCode)
	}
	out, _ := os.ReadFile(res.Stdout)
	errOut, _ := os.ReadFile(res.Stderr)
	var want bytes.Buffer
	for i := 1; i <= 5000; i++ {
		want.WriteString("line " + strconv.Itoa(i) + "\n")
	}
	want.WriteString("token [REDACTED] here\n")
	if diff := cmp.Diff(string(out), want.String()); diff != "" {
		t.Errorf("stdout file (-got +want):\n%s", diff)
	}
	if got := string(errOut); got != "err [REDACTED]\n" {
		t.Errorf("stderr file = %q", got)
	}
	var streamed = map[string]*bytes.Buffer{"stdout": {}, "stderr": {}}
	for i, c := range *chunks {
		if c.Seq != i {
			t.Fatalf("chunk %d has Seq %d", i, c.Seq)
		}
		if len(c.Data) > proc.ChunkSize {
			t.Errorf("chunk %d is %d bytes, over %d", i, len(c.Data), proc.ChunkSize)
		}
		streamed[c.Stream].Write(c.Data)
	}
	if streamed["stdout"].String() != string(out) || streamed["stderr"].String() != string(errOut) {
		t.Errorf("streamed output differs from the files")
	}
}

// TestRunRedactsSecretAcrossLongLineCut: a line longer than ChunkSize is read
// in pieces; a secret that straddles the cut between two pieces is replaced
// all the same, in the file and in the chunks.
func TestRunRedactsSecretAcrossLongLineCut(t *testing.T) {
	for _, at := range []int{proc.ChunkSize - 10, proc.ChunkSize - 1, proc.ChunkSize - 17, 2*proc.ChunkSize - 5} {
		r, chunks := newRunner(t)
		line := strings.Repeat("x", at) + testSecret + strings.Repeat("y", 100)
		res, err := r.Run(context.Background(), proc.Cmd{Name: "long", Args: []string{"printf", "%s\\n", line}})
		if err != nil {
			t.Fatal(err)
		}
		want := strings.Repeat("x", at) + "[REDACTED]" + strings.Repeat("y", 100) + "\n"
		out, _ := os.ReadFile(res.Stdout)
		if diff := cmp.Diff(string(out), want); diff != "" {
			t.Errorf("secret at %d: stdout file (-got +want):\n%s", at, diff)
		}
		var streamed strings.Builder
		for i, c := range *chunks {
			if len(c.Data) > proc.ChunkSize {
				t.Errorf("secret at %d: chunk %d is %d bytes, over %d", at, i, len(c.Data), proc.ChunkSize)
			}
			streamed.Write(c.Data)
		}
		if streamed.String() != want {
			t.Errorf("secret at %d: streamed output differs from the file", at)
		}
	}
}

func TestRunTimeoutKillsProcessGroup(t *testing.T) {
	r, _ := newRunner(t)
	pidFile := t.TempDir() + "/child.pid"
	// The shell ignores SIGTERM and leaves a background child: both must go.
	script := `trap '' TERM; sleep 300 & echo $! > ` + pidFile + `; wait`
	res, err := r.Run(context.Background(), proc.Cmd{Name: "hang", Args: []string{"sh", "-c", script}, Timeout: 300 * time.Millisecond})
	if !errors.Is(err, proc.ErrTimeout) || !res.TimedOut {
		t.Fatalf("err = %v, timed out %v; want ErrTimeout", err, res.TimedOut)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	// The group was SIGKILLed; give the kernel a moment to reap the orphan.
	for i := 0; ; i++ {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) || zombie(pid) {
			break
		}
		if i > 200 {
			t.Fatalf("background child %d still alive", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// zombie reports whether pid has exited and only waits to be reaped (by an
// init that may be slow to do it in a container).
func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] == 'Z'
}

func TestRunCancelledByContext(t *testing.T) {
	r, _ := newRunner(t)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(100 * time.Millisecond); cancel() }()
	_, err := r.Run(ctx, proc.Cmd{Name: "sleep", Args: []string{"sleep", "60"}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestRunEmptyArgv(t *testing.T) {
	r, _ := newRunner(t)
	if _, err := r.Run(context.Background(), proc.Cmd{Name: "x"}); err == nil {
		t.Fatal("empty argv ran")
	}
}

func TestRedactor(t *testing.T) {
	r := proc.NewRedactor("abc", "secret-one", "secret-one-longer")
	r.Add("ghp_0123456789")
	tests := []struct{ in, want string }{
		{"nothing here abc", "nothing here abc"},
		{"x secret-one y", "x [REDACTED] y"},
		{"x secret-one-longer y", "x [REDACTED] y"},
		{"ghp_0123456789ghp_0123456789", "[REDACTED][REDACTED]"},
	}
	for _, tt := range tests {
		if got := r.String(tt.in); got != tt.want {
			t.Errorf("String(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	var nilR *proc.Redactor
	if got := nilR.String("a"); got != "a" {
		t.Errorf("nil redactor changed text")
	}
}

func FuzzRedactor(f *testing.F) {
	f.Add("token ghs_abcdef in text", "ghs_abcdef")
	f.Add("aaaaaaa", "aaaaaa")
	f.Fuzz(func(t *testing.T, text, secret string) {
		r := proc.NewRedactor(secret)
		got := r.String(text)
		if len(secret) >= proc.MinSecretLen && !strings.Contains(proc.Redacted, secret) && strings.Contains(got, secret) {
			t.Fatalf("String(%q) = %q still holds %q", text, got, secret)
		}
	})
}
