package runners

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"

	"github.com/rs/zerolog"

	"github.com/nvidia/adbot/onboarding/hub"
	"github.com/nvidia/adbot/onboarding/workflow"
	"github.com/nvidia/adbot/runners/proc"
	"github.com/nvidia/adbot/runners/sandbox"
)

// confine prepares what a cycle's sandboxes see (Cycle.box), the job's agent
// home, and, unless ADBOT_SANDBOX=off, the agent's egress proxy, whose every
// refusal is logged and shown on the job's live log.
func (r *Runner) confine(ctx context.Context, cy *Cycle, sink func(proc.Chunk)) error {
	key := cy.Msg.JobKey
	sum := sha256.Sum256([]byte(key))
	cy.agentHome = filepath.Join(r.cfg.DataDir, "agent", hex.EncodeToString(sum[:8]))
	if err := os.MkdirAll(cy.agentHome, 0o700); err != nil {
		return fmt.Errorf("agent home: %w", err)
	}
	ro := []string{hub.CacheDir(os.Getenv)}
	hidden := []string{r.cfg.DataDir, r.cfg.RepoDir}
	if r.cfg.NATSCreds != "" {
		hidden = append(hidden, r.cfg.NATSCreds)
	}
	// A GPU without a device node (mocked GPUs on a laptop or in tests) has
	// nothing to bind: the sandbox gets the nodes that exist.
	var gpus []int
	for _, i := range cy.GPUs {
		if _, err := os.Stat(fmt.Sprintf("/dev/nvidia%d", i)); err == nil {
			gpus = append(gpus, i)
		} else {
			zerolog.Ctx(ctx).Warn().Int(LogKeyGPU, i).Msg("GPU has no /dev/nvidia device node (mocked?): none bound into the sandbox")
		}
	}
	cy.box = sandbox.Spec{Worktree: cy.Worktree.Dir, Scratch: cy.scratch, ReadOnly: ro,
		Writable: []string{cy.agentHome}, Hidden: hidden, GPUs: gpus}
	if r.cfg.Sandbox == sandbox.ModeOff {
		zerolog.Ctx(ctx).Warn().Msg("ADBOT_SANDBOX=off: this cycle's agent, pytest and end-to-end run are NOT confined; for development only")
		return nil
	}
	sock := filepath.Join(r.cfg.DataDir, "sock", hex.EncodeToString(sum[:8])+".sock")
	if err := os.MkdirAll(filepath.Dir(sock), 0o700); err != nil {
		return fmt.Errorf("egress proxy: %w", err)
	}
	_ = os.Remove(sock) // a dead cycle's
	seq := 0
	px, err := sandbox.StartProxy(sock, r.cfg.AgentEgress, func(rf sandbox.Refusal) {
		zerolog.Ctx(ctx).Warn().Str("method", rf.Method).Str("host", rf.Host).Str("reason", rf.Reason).Msg("agent egress refused")
		b, _ := json.Marshal(rf)
		seq++
		sink(proc.Chunk{Step: "egress-refused", Seq: seq, Stream: "stderr", Data: append(b, '\n')})
	})
	if err != nil {
		return fmt.Errorf("start the agent's egress proxy: %w", err)
	}
	cy.proxy = px
	return nil
}

// policy is the sandbox a process of class runs in (nil: none, the
// runner's own tools such as git). The program must be visible inside: its
// folder, and the folder a link to it points into, are added read-only.
func (c *Cycle) policy(class workflow.Class, program string) *sandbox.Policy {
	box := c.box
	if p, err := exec.LookPath(program); err == nil && class != workflow.ClassTool {
		box.ReadOnly = append(slices.Clone(box.ReadOnly), filepath.Dir(p))
		if real, err := filepath.EvalSymlinks(p); err == nil && filepath.Dir(real) != filepath.Dir(p) {
			box.ReadOnly = append(box.ReadOnly, filepath.Dir(real))
		}
	}
	switch class {
	case workflow.ClassAgent:
		sock := ""
		if c.proxy != nil {
			sock = c.proxy.Socket()
		}
		return sandbox.Agent(box, sock, "")
	case workflow.ClassTest:
		return sandbox.Test(box)
	case workflow.ClassE2E:
		return sandbox.E2E(box)
	}
	return nil
}

// AgentTools are the agent's allowed and disallowed tool rules
// (ADBOT_AGENT_ALLOWED_TOOLS, ADBOT_AGENT_DISALLOWED_TOOLS), with the
// sandbox package's safe defaults where unset.
func (c Config) AgentTools() (allowed, disallowed []string) {
	allowed, disallowed = c.AgentAllowedTools, c.AgentDisallowedTools
	if len(allowed) == 0 {
		allowed = sandbox.DefaultAllowedTools
	}
	if len(disallowed) == 0 {
		disallowed = sandbox.DefaultDisallowedTools
	}
	return allowed, disallowed
}
