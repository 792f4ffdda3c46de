package sandbox_test

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/nvidia/adbot/runners/sandbox"
)

// BenchmarkStart measures what a sandbox adds to starting a process: /bin/true
// unconfined, in the test class's sandbox, and in the agent's (bwrap plus the
// forwarder in front of the command).
//
//	go test ./runners/sandbox -run XXX -bench Start -benchtime 200x
func BenchmarkStart(b *testing.B) {
	if err := sandbox.Probe(b.Context(), "bwrap"); err != nil {
		b.Skipf("no sandbox on this machine: %v", err)
	}
	root := b.TempDir()
	spec := sandbox.Spec{Worktree: filepath.Join(root, "wt"), Scratch: filepath.Join(root, "scratch")}
	for _, d := range []string{spec.Worktree, spec.Scratch} {
		if err := exec.Command("mkdir", "-p", d).Run(); err != nil {
			b.Fatal(err)
		}
	}
	px, err := sandbox.StartProxy(filepath.Join(root, "egress.sock"), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer px.Close()
	for _, bc := range []struct {
		name string
		p    *sandbox.Policy
	}{
		{"unconfined", nil},
		{"test", sandbox.Test(spec)},
		{"agent", sandbox.Agent(spec, px.Socket(), "")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			argv := []string{"true"}
			if bc.p != nil {
				if err := bc.p.Prepare(); err != nil {
					b.Fatal(err)
				}
				if argv, err = bc.p.Command("bwrap", argv, ""); err != nil {
					b.Fatal(err)
				}
			}
			for b.Loop() {
				if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
					b.Fatalf("%v: %s", err, out)
				}
			}
		})
	}
}
