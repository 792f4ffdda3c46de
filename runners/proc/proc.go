// Package proc runs a cycle's processes: from an argument vector (never a
// shell string), with a minimal environment, a time limit, in their own
// process group that is killed as a whole. Output is kept in full in files and
// streamed, redacted, in ordered chunks.
package proc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/nvidia/adbot/runners/sandbox"
)

// Defaults for Runner and Cmd.
const (
	// DefaultTimeout bounds a command that names no Timeout.
	DefaultTimeout = 2 * time.Hour
	// DefaultGrace is how long a process group has between SIGTERM and SIGKILL.
	DefaultGrace = 5 * time.Second
	// ChunkSize is the most output one Chunk carries.
	ChunkSize = 16 << 10
	// ChunkQueue bounds the chunks waiting for the sink; a slow sink slows the
	// reading of output rather than losing it.
	ChunkQueue = 64
)

// BaseEnv names the variables a process inherits from the runner; everything
// else (NATS credentials, the runner's own configuration) stays behind.
var BaseEnv = []string{"PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ", "TMPDIR", "SHELL", "TERM"}

// Cmd is one process to run.
type Cmd struct {
	// Name labels the step in logs and file names ("unit-tests").
	Name string
	// Args is the argument vector; Args[0] is the program, looked up in PATH.
	Args []string
	// Dir is the working directory.
	Dir string
	// Env adds KEY=VALUE pairs to the minimal environment.
	Env []string
	// Timeout bounds the run (DefaultTimeout if zero).
	Timeout time.Duration
	// Stdin, if set, is the process's standard input.
	Stdin io.Reader
	// Sandbox, if set, confines the process (sandbox.Agent, Test, E2E):
	// Runner.Sandbox says how. Nil runs it as the runner's own child.
	Sandbox *sandbox.Policy
}

// Result is how a process ended.
type Result struct {
	ExitCode int
	// TimedOut says the time limit killed it.
	TimedOut bool
	Duration time.Duration
	// Stdout and Stderr are the files holding the complete (redacted) output.
	Stdout, Stderr string
}

// Chunk is a piece of a process's output, in order: Seq counts from 0 over both
// streams of one command.
type Chunk struct {
	Step   string
	Seq    int
	Stream string // "stdout" or "stderr"
	Data   []byte
}

// Runner starts processes. The zero value is not usable: set LogDir.
type Runner struct {
	// LogDir receives <n>-<name>.stdout and .stderr for each command.
	LogDir string
	// Redactor, if set, removes secrets from files and chunks.
	Redactor *Redactor
	// Sink, if set, receives every chunk in order, from one goroutine.
	Sink func(Chunk)
	// PassEnv names more variables to inherit besides BaseEnv (HF_HOME, ...).
	PassEnv []string
	// Grace is the time between SIGTERM and SIGKILL (DefaultGrace if zero).
	Grace time.Duration
	// Sandbox is how commands with a Cmd.Sandbox policy run: sandbox.ModeBwrap
	// (also when empty) or sandbox.ModeOff, for development only, which runs
	// them unconfined with a warning each time.
	Sandbox sandbox.Mode
	// Bwrap is the bubblewrap program ("bwrap", looked up in PATH, if empty).
	Bwrap string

	mu sync.Mutex
	n  int
	// probed and probeErr keep the first sandbox check's answer.
	probed   bool
	probeErr error
}

// ErrTimeout is wrapped by the error Run returns when the time limit killed the process.
var ErrTimeout = errors.New("time limit reached")

var safeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// Run runs c to completion. It returns a non-nil error when the process could
// not start, was killed by ctx or its time limit, or exited non-zero (an
// *ExitError); the Result is filled in every case where it started.
func (r *Runner) Run(ctx context.Context, c Cmd) (Result, error) {
	if len(c.Args) == 0 || c.Args[0] == "" {
		return Result{}, fmt.Errorf("run %q: empty argument vector", c.Name)
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	grace := r.Grace
	if grace <= 0 {
		grace = DefaultGrace
	}
	r.mu.Lock()
	r.n++
	n := r.n
	r.mu.Unlock()
	name := safeName.ReplaceAllString(c.Name, "_")
	if name == "" {
		name = safeName.ReplaceAllString(filepath.Base(c.Args[0]), "_")
	}
	if err := os.MkdirAll(r.LogDir, 0o750); err != nil {
		return Result{}, fmt.Errorf("run %s: make log dir: %w", name, err)
	}
	base := filepath.Join(r.LogDir, fmt.Sprintf("%03d-%s", n, name))
	res := Result{Stdout: base + ".stdout", Stderr: base + ".stderr", ExitCode: -1}
	outF, err := os.OpenFile(res.Stdout, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return res, fmt.Errorf("run %s: %w", name, err)
	}
	defer outF.Close()
	errF, err := os.OpenFile(res.Stderr, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return res, fmt.Errorf("run %s: %w", name, err)
	}
	defer errF.Close()

	runCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	argv, env, err := r.confine(ctx, name, c)
	if err != nil {
		return res, err
	}
	cmd := exec.CommandContext(runCtx, argv[0], argv[1:]...)
	cmd.Dir = c.Dir
	cmd.Env = env
	cmd.Stdin = c.Stdin
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = grace
	// Our own pipes, not exec's: a grandchild that keeps one open must not
	// block Wait, and is killed with the group below.
	outR, outW, err := os.Pipe()
	if err != nil {
		return res, fmt.Errorf("run %s: %w", name, err)
	}
	defer outR.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		outW.Close()
		return res, fmt.Errorf("run %s: %w", name, err)
	}
	defer errR.Close()
	cmd.Stdout, cmd.Stderr = outW, errW

	start := time.Now()
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		return res, fmt.Errorf("start %s (%s): %w", name, c.Args[0], err)
	}
	pgid := cmd.Process.Pid

	// Two readers feed one ordered queue drained by one sink goroutine.
	queue := make(chan Chunk, ChunkQueue)
	var seqMu sync.Mutex
	seq := 0
	emit := func(stream string, data []byte) {
		if r.Sink == nil {
			return
		}
		seqMu.Lock()
		defer seqMu.Unlock() // held while queueing, so Seq order is queue order
		queue <- Chunk{Step: name, Seq: seq, Stream: stream, Data: data}
		seq++
	}
	sinkDone := make(chan struct{})
	go func() {
		defer close(sinkDone)
		for ch := range queue {
			r.Sink(ch)
		}
	}()
	var readers sync.WaitGroup
	var copyErr error
	var copyErrMu sync.Mutex
	for _, s := range []struct {
		name string
		src  io.Reader
		dst  io.Writer
	}{{"stdout", outR, outF}, {"stderr", errR, errF}} {
		readers.Add(1)
		go func() {
			defer readers.Done()
			if err := r.pump(s.src, s.dst, func(b []byte) { emit(s.name, b) }); err != nil {
				copyErrMu.Lock()
				copyErr = errors.Join(copyErr, err)
				copyErrMu.Unlock()
			}
		}()
	}
	waitErr := cmd.Wait()
	// Whatever the leader left behind in its group goes with it.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	readersDone := make(chan struct{})
	go func() { readers.Wait(); close(readersDone) }()
	select {
	case <-readersDone:
	case <-time.After(grace):
		// Something outside the group holds a pipe open: stop reading.
		_ = outR.SetReadDeadline(time.Now())
		_ = errR.SetReadDeadline(time.Now())
		<-readersDone
	}
	close(queue)
	<-sinkDone
	res.Duration = time.Since(start)
	if cmd.ProcessState != nil {
		res.ExitCode = cmd.ProcessState.ExitCode()
	}
	switch {
	case errors.Is(runCtx.Err(), context.DeadlineExceeded) && ctx.Err() == nil:
		res.TimedOut = true
		return res, fmt.Errorf("run %s: %w after %s", name, ErrTimeout, timeout)
	case ctx.Err() != nil:
		return res, fmt.Errorf("run %s: %w", name, ctx.Err())
	case waitErr != nil:
		return res, fmt.Errorf("run %s: %w", name, waitErr)
	case copyErr != nil:
		return res, fmt.Errorf("run %s: keep output: %w", name, copyErr)
	}
	return res, nil
}

// pump copies src to dst line by line (lines longer than ChunkSize are cut),
// redacting each piece, and hands chunks of up to ChunkSize to emit. Where a
// long line is cut, its last bytes (one fewer than the longest secret) are
// held back and redacted with the next piece, so a secret astride the cut is
// still replaced.
func (r *Runner) pump(src io.Reader, dst io.Writer, emit func([]byte)) error {
	br := bufio.NewReaderSize(src, ChunkSize)
	var pending, carry []byte
	var werr error
	flush := func() {
		if len(pending) > 0 {
			emit(pending)
			pending = nil
		}
	}
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 || len(carry) > 0 {
			red := r.Redactor.Bytes(append(carry, line...))
			carry = nil
			if err == bufio.ErrBufferFull {
				if k := r.Redactor.maxLen() - 1; k > 0 && k < len(red) {
					carry = append([]byte(nil), red[len(red)-k:]...)
					red = red[:len(red)-k]
				}
			}
			if _, e := dst.Write(red); e != nil && werr == nil {
				werr = e
			}
			if len(pending)+len(red) > ChunkSize {
				flush()
			}
			pending = append(pending, red...)
			for len(pending) > ChunkSize { // a carried tail or a redaction made it longer
				emit(pending[:ChunkSize:ChunkSize])
				pending = pending[ChunkSize:]
			}
			if br.Buffered() == 0 { // nothing more waiting: send what we have now
				flush()
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			flush()
			if errors.Is(err, io.EOF) || errors.Is(err, os.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded) {
				return werr
			}
			return errors.Join(werr, err)
		}
	}
}

// confine returns the argument vector and environment that run c: as given,
// or inside its sandbox. A sandbox that cannot be built is an error naming
// what is missing; the process does not start.
func (r *Runner) confine(ctx context.Context, name string, c Cmd) ([]string, []string, error) {
	env := r.env(c.Env)
	p := c.Sandbox
	if p == nil {
		return c.Args, env, nil
	}
	switch r.Sandbox {
	case sandbox.ModeOff:
		zerolog.Ctx(ctx).Warn().Str("step", name).Str("class", string(p.Class)).
			Msg("ADBOT_SANDBOX=off: running UNCONFINED, with the runner's files and network in reach; for development only")
		return c.Args, p.StripSecrets(env), nil
	case "", sandbox.ModeBwrap:
	default:
		return nil, nil, fmt.Errorf("run %s: sandbox mode %q: want bwrap or off", name, r.Sandbox)
	}
	bwrap := r.Bwrap
	if bwrap == "" {
		bwrap = "bwrap"
	}
	r.mu.Lock()
	if !r.probed {
		r.probeErr = sandbox.Probe(ctx, bwrap)
		r.probed = r.probeErr == nil || ctx.Err() == nil
	}
	perr := r.probeErr
	r.mu.Unlock()
	if perr != nil {
		return nil, nil, fmt.Errorf("run %s: %w", name, perr)
	}
	if err := p.Prepare(); err != nil {
		return nil, nil, fmt.Errorf("run %s: %w", name, err)
	}
	argv, err := p.Command(bwrap, c.Args, c.Dir)
	if err != nil {
		return nil, nil, fmt.Errorf("run %s: %w", name, err)
	}
	return argv, p.Environ(env), nil
}

func (r *Runner) env(extra []string) []string {
	var env []string
	for _, k := range append(append([]string(nil), BaseEnv...), r.PassEnv...) {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return append(env, extra...)
}

// Tail returns the last n bytes of a file, starting at a line boundary when
// one is near, for short reports of a long log.
func Tail(path string, n int64) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("tail %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("tail %s: %w", path, err)
	}
	off := max(st.Size()-n, 0)
	b := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(b, off); err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("tail %s: %w", path, err)
	}
	s := string(b)
	if off > 0 {
		if i := strings.IndexByte(s, '\n'); i >= 0 && i < len(s)-1 {
			s = s[i+1:]
		}
	}
	return s, nil
}
