// Package agent runs Claude Code headless and reads its stream-json output:
// Args builds the argument vector, Read follows the stream (session id from
// system/init, the assistant's text and tool uses, the first result) and Run
// tells success from failure.
package agent

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Message is one line of the stream, as far as adbot reads it. Other fields
// are kept in Raw.
type Message struct {
	Type    string `json:"type"`
	Subtype string `json:"subtype"`
	// SessionID is on every line of recent versions.
	SessionID string `json:"session_id"`
	// Model and CWD are on system/init.
	Model string `json:"model"`
	CWD   string `json:"cwd"`
	// Message is the API message of assistant and user lines.
	Message *APIMessage `json:"message"`
	// ParentToolUseID is set on messages of a subagent (Task tool).
	ParentToolUseID string `json:"parent_tool_use_id"`

	// Result fields.
	IsError        bool            `json:"is_error"`
	NumTurns       int             `json:"num_turns"`
	TotalCostUSD   float64         `json:"total_cost_usd"`
	DurationMS     int64           `json:"duration_ms"`
	Result         *string         `json:"result"`
	Errors         json.RawMessage `json:"errors"`
	APIErrorStatus *int            `json:"api_error_status"`
	StopReason     string          `json:"stop_reason"`

	// Raw is the line as read.
	Raw json.RawMessage `json:"-"`
	// Line is the 1-based line number in the stream.
	Line int `json:"-"`
}

// APIMessage is the message of an assistant or user line.
type APIMessage struct {
	ID      string    `json:"id"`
	Role    string    `json:"role"`
	Model   string    `json:"model"`
	Content []Content `json:"content"`
}

// Content is one block of a message.
type Content struct {
	Type string `json:"type"`
	// Text of a text block.
	Text string `json:"text"`
	// ID, Name and Input of a tool_use block.
	ID    string          `json:"id"`
	Name  string          `json:"name"`
	Input json.RawMessage `json:"input"`
	// ToolUseID, Content and IsError of a tool_result block (Content is a
	// string or a list of blocks).
	ToolUseID string          `json:"tool_use_id"`
	Content   json.RawMessage `json:"content"`
	IsError   bool            `json:"is_error"`
}

// UnmarshalJSON lets a message's content be a plain string, as user
// messages sometimes are.
func (m *APIMessage) UnmarshalJSON(b []byte) error {
	type plain APIMessage
	var aux struct {
		plain
		Content json.RawMessage `json:"content"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	*m = APIMessage(aux.plain)
	m.Content = nil
	c := bytes.TrimSpace(aux.Content)
	switch {
	case len(c) == 0 || bytes.Equal(c, []byte("null")):
	case c[0] == '"':
		var s string
		if err := json.Unmarshal(c, &s); err != nil {
			return err
		}
		m.Content = []Content{{Type: "text", Text: s}}
	default:
		if err := json.Unmarshal(c, &m.Content); err != nil {
			return err
		}
	}
	return nil
}

// ToolUse is one tool call the agent made.
type ToolUse struct {
	ID    string
	Name  string
	Input json.RawMessage
	// Result is the tool's answer as text, when it came in the stream.
	Result  string
	IsError bool
	// Subagent is true for calls made inside a subagent.
	Subagent bool
}

// Result is the stream's final line.
type Result struct {
	Subtype      string
	IsError      bool
	NumTurns     int
	TotalCostUSD float64
	DurationMS   int64
	SessionID    string
	// Text is the "result" field; HasText is false when the key was absent
	// (error_max_turns leaves it out).
	Text           string
	HasText        bool
	Errors         []string
	APIErrorStatus int
	StopReason     string
}

// Run is what one stream told.
type Run struct {
	SessionID string
	Model     string
	CWD       string
	// Texts are the assistant's text blocks in order (the top-level agent's
	// and its subagents').
	Texts    []string
	ToolUses []ToolUse
	// Result is nil when the stream ended without one.
	Result *Result
	// Lines is the number of lines read; Skipped the lines that were not
	// JSON objects (stray output), with their numbers.
	Lines   int
	Skipped []int
}

// OK reports whether the session succeeded: a result with is_error false
// and subtype "success". (A bad --model gives subtype "success" with
// is_error true.)
func (r *Run) OK() bool {
	return r.Result != nil && !r.Result.IsError && r.Result.Subtype == "success"
}

// Err explains a failed session, nil when it succeeded.
func (r *Run) Err() error {
	if r.OK() {
		return nil
	}
	if r.Result == nil {
		return fmt.Errorf("agent session %s: %w", orUnknown(r.SessionID), ErrNoResult)
	}
	res := r.Result
	var detail []string
	if res.APIErrorStatus != 0 {
		detail = append(detail, fmt.Sprintf("API status %d", res.APIErrorStatus))
	}
	detail = append(detail, res.Errors...)
	if res.HasText && res.Text != "" {
		detail = append(detail, res.Text)
	}
	msg := fmt.Sprintf("agent session %s ended %s (is_error %v) after %d turns", orUnknown(res.SessionID), res.Subtype, res.IsError, res.NumTurns)
	if len(detail) > 0 {
		msg += ": " + strings.Join(detail, "; ")
	}
	return &SessionError{Subtype: res.Subtype, msg: msg}
}

// SessionError is a session that ended with a result that is not a success.
type SessionError struct {
	// Subtype is the result's subtype, e.g. "error_max_turns".
	Subtype string
	msg     string
}

func (e *SessionError) Error() string { return e.msg }

// MaxTurns reports whether the session stopped at --max-turns.
func (e *SessionError) MaxTurns() bool { return e.Subtype == "error_max_turns" }

// ErrNoResult is returned when a stream ends without a result line (the
// process died or was killed).
var ErrNoResult = errors.New("stream ended without a result")

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}

// Handler sees each message as it is read, e.g. to log progress or renew a
// lease. It may be nil.
type Handler func(Message)

// Read follows a stream-json stream until its first result line and
// returns what it told. It reads line by line without a line length limit;
// blank lines and lines that are not JSON objects are skipped (and counted);
// a line that starts like an object but does not decode is an error naming
// its line. Unknown types and subtypes are ignored. A stream that ends
// without a result returns the Run so far and an error wrapping ErrNoResult.
// Whether the session succeeded is Run.OK, not the error.
func Read(r io.Reader, h Handler) (*Run, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	run := &Run{}
	pending := map[string]int{} // tool_use id -> index in run.ToolUses
	for {
		raw, err := br.ReadBytes('\n')
		if len(raw) == 0 && err != nil {
			if errors.Is(err, io.EOF) {
				return run, fmt.Errorf("read agent stream after line %d (session %s): %w", run.Lines, orUnknown(run.SessionID), ErrNoResult)
			}
			return run, fmt.Errorf("read agent stream after line %d: %w", run.Lines, err)
		}
		run.Lines++
		line := bytes.TrimSpace(raw)
		if len(line) == 0 {
			continue
		}
		if line[0] != '{' {
			run.Skipped = append(run.Skipped, run.Lines)
			continue
		}
		var m Message
		if err := json.Unmarshal(line, &m); err != nil {
			return run, fmt.Errorf("agent stream line %d: %w", run.Lines, err)
		}
		m.Raw = append(json.RawMessage(nil), line...)
		m.Line = run.Lines
		if h != nil {
			h(m)
		}
		if run.SessionID == "" && m.SessionID != "" && m.Type != "result" {
			run.SessionID = m.SessionID
		}
		switch m.Type {
		case "system":
			if m.Subtype == "init" {
				run.SessionID = m.SessionID
				run.Model = m.Model
				run.CWD = m.CWD
			}
		case "assistant":
			if m.Message == nil {
				continue
			}
			for _, c := range m.Message.Content {
				switch c.Type {
				case "text":
					if c.Text != "" {
						run.Texts = append(run.Texts, c.Text)
					}
				case "tool_use":
					pending[c.ID] = len(run.ToolUses)
					run.ToolUses = append(run.ToolUses, ToolUse{ID: c.ID, Name: c.Name, Input: c.Input, Subagent: m.ParentToolUseID != ""})
				}
			}
		case "user":
			if m.Message == nil {
				continue
			}
			for _, c := range m.Message.Content {
				if c.Type != "tool_result" {
					continue
				}
				if i, ok := pending[c.ToolUseID]; ok {
					run.ToolUses[i].Result = resultText(c.Content)
					run.ToolUses[i].IsError = c.IsError
				}
			}
		case "result":
			run.Result = toResult(m)
			if run.SessionID == "" {
				run.SessionID = m.SessionID
			}
			return run, nil
		}
	}
}

// ReadFile is Read on a file; errors name the file.
func ReadFile(path string, h Handler) (*Run, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open agent stream: %w", err)
	}
	defer f.Close()
	run, err := Read(f, h)
	if err != nil {
		return run, fmt.Errorf("%s: %w", path, err)
	}
	return run, nil
}

func toResult(m Message) *Result {
	res := &Result{
		Subtype:      m.Subtype,
		IsError:      m.IsError,
		NumTurns:     m.NumTurns,
		TotalCostUSD: m.TotalCostUSD,
		DurationMS:   m.DurationMS,
		SessionID:    m.SessionID,
		Errors:       errorStrings(m.Errors),
		StopReason:   m.StopReason,
	}
	if m.Result != nil {
		res.Text, res.HasText = *m.Result, true
	}
	if m.APIErrorStatus != nil {
		res.APIErrorStatus = *m.APIErrorStatus
	}
	return res
}

// resultText flattens a tool_result's content (a string or text blocks).
func resultText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var blocks []Content
	if json.Unmarshal(raw, &blocks) == nil {
		var parts []string
		for _, b := range blocks {
			if b.Type == "text" {
				parts = append(parts, b.Text)
			}
		}
		return strings.Join(parts, "\n")
	}
	return string(raw)
}

// errorStrings reads a result's "errors": strings, or anything else kept as
// its JSON text.
func errorStrings(raw json.RawMessage) []string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	var ss []string
	if json.Unmarshal(raw, &ss) == nil {
		return ss
	}
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) == nil {
		out := make([]string, len(items))
		for i, a := range items {
			out[i] = resultText(a)
		}
		return out
	}
	return []string{string(raw)}
}
