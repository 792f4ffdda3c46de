package agent

import (
	"fmt"
	"strconv"
	"strings"
)

// Options are the flags of one headless Claude Code invocation.
type Options struct {
	// Prompt is the task. It goes last, after "--", so that a prompt that
	// starts with "-" is never read as a flag.
	Prompt string
	// MaxTurns bounds the agent's turns (0: the CLI's default).
	MaxTurns int
	// MaxBudgetUSD bounds the session's spend (0: no bound).
	MaxBudgetUSD float64
	// Model names the model (empty: the CLI's default).
	Model string
	// PermissionMode is one of PermissionModes (empty: the CLI's default).
	PermissionMode string
	// AllowedTools and DisallowedTools are tool rules such as "Bash(git:*)".
	AllowedTools    []string
	DisallowedTools []string
	// AppendSystemPrompt is added to the system prompt.
	AppendSystemPrompt string
	// Resume continues the session with this id.
	Resume string
}

// PermissionModes are the values --permission-mode accepts.
var PermissionModes = []string{"default", "acceptEdits", "plan", "bypassPermissions", "dontAsk"}

// Validate reports options the CLI would refuse or misread.
func (o Options) Validate() error {
	if strings.TrimSpace(o.Prompt) == "" {
		return fmt.Errorf("agent options: empty prompt")
	}
	if o.MaxTurns < 0 {
		return fmt.Errorf("agent options: max turns %d < 0", o.MaxTurns)
	}
	if o.MaxBudgetUSD < 0 {
		return fmt.Errorf("agent options: max budget %v < 0", o.MaxBudgetUSD)
	}
	if o.PermissionMode != "" {
		ok := false
		for _, m := range PermissionModes {
			ok = ok || m == o.PermissionMode
		}
		if !ok {
			return fmt.Errorf("agent options: permission mode %q, want one of %s", o.PermissionMode, strings.Join(PermissionModes, ", "))
		}
	}
	for _, t := range append(append([]string{}, o.AllowedTools...), o.DisallowedTools...) {
		if t == "" || strings.HasPrefix(t, "-") {
			return fmt.Errorf("agent options: tool rule %q", t)
		}
	}
	if strings.ContainsAny(o.Resume, " \t\n") {
		return fmt.Errorf("agent options: session id %q", o.Resume)
	}
	return nil
}

// Args returns the argument vector (without the program name) for
//
//	claude -p --output-format stream-json --verbose [--max-turns N]
//	  [--max-budget-usd X] [--model M] [--permission-mode P]
//	  [--append-system-prompt S] [--resume=<id>]
//	  [--allowedTools T...] [--disallowedTools T...] -- <prompt>
//
// --verbose is required with stream-json. Values that could start with "-"
// are written as one token (--flag=value); the tool lists, whose flags take
// several values, come last before "--". Call Validate first.
func Args(o Options) []string {
	args := []string{"-p", "--output-format", "stream-json", "--verbose"}
	if o.MaxTurns > 0 {
		args = append(args, "--max-turns", strconv.Itoa(o.MaxTurns))
	}
	if o.MaxBudgetUSD > 0 {
		args = append(args, "--max-budget-usd", strconv.FormatFloat(o.MaxBudgetUSD, 'f', -1, 64))
	}
	if o.Model != "" {
		args = append(args, "--model="+o.Model)
	}
	if o.PermissionMode != "" {
		args = append(args, "--permission-mode", o.PermissionMode)
	}
	if o.AppendSystemPrompt != "" {
		args = append(args, "--append-system-prompt="+o.AppendSystemPrompt)
	}
	if o.Resume != "" {
		args = append(args, "--resume="+o.Resume)
	}
	if len(o.AllowedTools) > 0 {
		args = append(append(args, "--allowedTools"), o.AllowedTools...)
	}
	if len(o.DisallowedTools) > 0 {
		args = append(append(args, "--disallowedTools"), o.DisallowedTools...)
	}
	return append(args, "--", o.Prompt)
}
