package sandbox

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
)

// forwardArg, as the first argument of a program built with this package,
// makes it the forwarder instead of itself (see init). The runner's own
// executable is bound into the agent's sandbox and started this way:
//
//	/run/adbot/forward __adbot-sandbox-forward 127.0.0.1:3128 /run/adbot/egress.sock -- claude ...
//
// It listens on the address inside the sandbox's network namespace (which
// has nothing but loopback), hands each connection to the egress proxy's unix
// socket, runs the command, and exits with its status. The proxy, outside,
// decides what may pass; the forwarder only carries bytes.
const forwardArg = "__adbot-sandbox-forward"

func init() {
	if len(os.Args) > 1 && os.Args[1] == forwardArg {
		os.Exit(forwardMain(os.Args[2:], os.Stderr))
	}
}

// forwardMain runs the forwarder: args are ADDR SOCKET -- COMMAND ARGS...
func forwardMain(args []string, stderr io.Writer) int {
	if len(args) < 4 || args[2] != "--" {
		fmt.Fprintln(stderr, "adbot sandbox forwarder: want ADDR SOCKET -- COMMAND [ARGS...]")
		return 125
	}
	addr, sock, argv := args[0], args[1], args[3:]
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(stderr, "adbot sandbox forwarder: listen %s: %v\n", addr, err)
		return 125
	}
	var conns sync.WaitGroup
	acceptDone := make(chan struct{})
	go func() { // owned here; ends when ln is closed below
		defer close(acceptDone)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() { // ends when either side closes
				defer conns.Done()
				pipeUnix(c, sock)
			}()
		}
	}()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(stderr, "adbot sandbox forwarder: start %s: %v\n", argv[0], err)
		ln.Close()
		<-acceptDone
		return 127
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }() // ends with the command
	var werr error
	for done := false; !done; {
		select {
		case s := <-sigs:
			_ = cmd.Process.Signal(s)
		case werr = <-waited:
			done = true
		}
	}
	signal.Stop(sigs)
	ln.Close()
	<-acceptDone
	// Open tunnels die with the sandbox; nothing waits on conns here.
	var ee *exec.ExitError
	switch {
	case werr == nil:
		return 0
	case errors.As(werr, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	fmt.Fprintf(stderr, "adbot sandbox forwarder: %v\n", werr)
	return 125
}

// pipeUnix carries c's bytes to and from the unix socket at sock.
func pipeUnix(c net.Conn, sock string) {
	defer c.Close()
	u, err := net.Dial("unix", sock)
	if err != nil {
		return
	}
	defer u.Close()
	pipe(c, u)
}

// pipe copies both ways until both directions end, passing each half-close on.
func pipe(a, b net.Conn) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(b, a)
		closeWrite(b)
	}()
	_, _ = io.Copy(a, b)
	closeWrite(a)
	wg.Wait()
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	_ = c.Close()
}
