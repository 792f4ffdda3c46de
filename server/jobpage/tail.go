package jobpage

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/nvidia/adbot/onboarding/agent"
	"github.com/nvidia/adbot/runners"
)

// Pane is where on a job's page an output item shows.
type Pane string

// The panes of a job's page, in the order the page shows them.
const (
	PaneAgent  Pane = "agent"
	PanePytest Pane = "pytest"
	PaneE2E    Pane = "e2e"
	PaneOther  Pane = "other"
)

// Panes lists every pane in page order.
var Panes = []Pane{PaneAgent, PanePytest, PaneE2E, PaneOther}

// Title is the pane's heading.
func (p Pane) Title() string {
	switch p {
	case PaneAgent:
		return "Agent turns"
	case PanePytest:
		return "pytest"
	case PaneE2E:
		return "End-to-end run"
	}
	return "Other output"
}

// PaneOf is the pane a process's output goes to, from the process name the
// runner gives it ("agent-model-1", "pytest-1", "e2e-reduced-1").
func PaneOf(step string) Pane {
	switch {
	case strings.HasPrefix(step, "agent"):
		return PaneAgent
	case strings.HasPrefix(step, "pytest"):
		return PanePytest
	case strings.HasPrefix(step, "e2e"):
		return PaneE2E
	}
	return PaneOther
}

// Item kinds: how an output item reads.
const (
	// KindStep heads a process's output ("pytest-1").
	KindStep = "step"
	// KindOut is raw output (stdout); KindErr is stderr.
	KindOut = "out"
	KindErr = "err"
	// KindAssistant, KindTool, KindToolResult, KindSystem and KindResult are
	// the agent's turns, read from its stream-json lines.
	KindAssistant  = "assistant"
	KindTool       = "tool"
	KindToolResult = "tool-result"
	KindSystem     = "system"
	KindResult     = "result"
	// KindNote is something the page says about the stream itself.
	KindNote = "note"
)

// Item is one piece of a running cycle's output as the page shows it.
type Item struct {
	// N numbers the items of one tail from 1; the page asks for those after the last it has.
	N     uint64
	Cycle int
	Step  string
	Pane  Pane
	Kind  string
	Text  string
}

// Tuning values of the in-memory tails.
const (
	// DefaultTailItems bounds the items kept per job.
	DefaultTailItems = 2000
	// DefaultTailBytes bounds the text kept per job.
	DefaultTailBytes = 1 << 20
	// DefaultMaxLine bounds one agent stream-json line being put together
	// from chunks; a longer one is shown as a note (the full log has it).
	DefaultMaxLine = 1 << 20
	// DefaultClip bounds the text shown for one tool call or tool result.
	DefaultClip = 600
)

// tail is the bounded recent output of one job's newest cycle.
type tail struct {
	// gen tells one tail of a job from the one before (a new cycle or a restart).
	gen   string
	cycle int
	items []Item
	bytes int
	next  uint64
	// partial holds an unfinished agent stream-json line per process.
	partial map[string][]byte
	// over marks processes whose current line passed DefaultMaxLine.
	over map[string]bool
	// lastStep is the process whose output a pane shows last: another one
	// gets a heading.
	lastStep map[Pane]string

	maxItems, maxBytes, maxLine int
}

func newTail(gen string, cycle int) *tail {
	return &tail{
		gen: gen, cycle: cycle, next: 1,
		partial: map[string][]byte{}, over: map[string]bool{}, lastStep: map[Pane]string{},
		maxItems: DefaultTailItems, maxBytes: DefaultTailBytes, maxLine: DefaultMaxLine,
	}
}

// add turns a chunk into items, keeps them (dropping the oldest beyond the
// bounds) and returns them.
func (t *tail) add(c runners.LogChunk) []Item {
	pane := PaneOf(c.Step)
	var out []Item
	emit := func(kind, text string) {
		if text == "" {
			return
		}
		it := Item{N: t.next, Cycle: c.Cycle, Step: c.Step, Pane: pane, Kind: kind, Text: text}
		t.next++
		out = append(out, it)
	}
	if t.lastStep[pane] != c.Step {
		t.lastStep[pane] = c.Step
		emit(KindStep, c.Step)
	}
	switch {
	case pane == PaneAgent && c.Stream == "stdout":
		for _, l := range t.lines(c.Step, c.Data) {
			if l.note {
				emit(KindNote, l.text)
				continue
			}
			for _, turn := range Turns(l.text) {
				emit(turn.Kind, turn.Text)
			}
		}
	case c.Stream == "stderr":
		emit(KindErr, c.Data)
	default:
		emit(KindOut, c.Data)
	}
	for _, it := range out {
		t.items = append(t.items, it)
		t.bytes += len(it.Text)
	}
	drop := 0
	for drop < len(t.items) && (len(t.items)-drop > t.maxItems || t.bytes > t.maxBytes) {
		t.bytes -= len(t.items[drop].Text)
		drop++
	}
	if drop > 0 {
		// Reslicing keeps taking in a chunk O(1) amortized: append copies the
		// live items to a new array only when the old one's end is reached.
		clear(t.items[:drop]) // let the dropped text go
		t.items = t.items[drop:]
	}
	return out
}

// line is a whole line of a process's output, or a note standing for one.
type line struct {
	text string
	note bool
}

// lines joins a process's chunks into whole lines: it returns the lines data
// completes and keeps the rest for the next chunk. A line that grows past
// maxLine is given up and stands as a note.
func (t *tail) lines(step, data string) []line {
	var out []line
	buf := t.partial[step]
	for data != "" {
		i := strings.IndexByte(data, '\n')
		piece := data
		if i >= 0 {
			piece, data = data[:i], data[i+1:]
		} else {
			data = ""
		}
		if !t.over[step] {
			buf = append(buf, piece...)
			if len(buf) > t.maxLine {
				t.over[step] = true
				buf = nil
				out = append(out, line{fmt.Sprintf("(a stream line longer than %d bytes is left out here; the cycle's full log has it)", t.maxLine), true})
			}
		}
		if i >= 0 {
			if !t.over[step] {
				out = append(out, line{text: string(buf)})
			}
			buf = buf[:0:0]
			delete(t.over, step)
		}
	}
	if len(buf) > 0 {
		t.partial[step] = buf
	} else {
		delete(t.partial, step)
	}
	return out
}

// since returns the items after n (all of them when n is 0).
func (t *tail) since(n uint64) []Item {
	if len(t.items) == 0 {
		return nil
	}
	// Items are numbered without gaps, so the first one after n is found by arithmetic.
	i := 0
	if first := t.items[0].N; n >= first {
		i = int(min(n-first+1, uint64(len(t.items))))
	}
	if i == len(t.items) {
		return nil
	}
	return append([]Item(nil), t.items[i:]...)
}

// Turn is one readable piece of an agent stream-json line.
type Turn struct {
	Kind string
	Text string
}

// Turns reads one line of Claude Code's stream-json output: the assistant's
// text, its tool calls, tool results, the session's start and its result.
// A line that is not a JSON object stands as raw output; one that is but does
// not decode says so; a line of another type says nothing.
func Turns(line string) []Turn {
	s := strings.TrimSpace(line)
	if s == "" {
		return nil
	}
	if s[0] != '{' {
		return []Turn{{KindOut, line + "\n"}}
	}
	var m agent.Message
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return []Turn{{KindNote, fmt.Sprintf("(a stream line that does not decode: %v)", err)}}
	}
	var out []Turn
	switch m.Type {
	case "system":
		if m.Subtype == "init" {
			out = append(out, Turn{KindSystem, strings.TrimSpace(fmt.Sprintf("session %s started, model %s", orDash(m.SessionID), orDash(m.Model)))})
		}
	case "assistant", "user":
		if m.Message == nil {
			return nil
		}
		for _, c := range m.Message.Content {
			switch c.Type {
			case "text":
				if m.Type == "assistant" {
					out = append(out, Turn{KindAssistant, c.Text})
				}
			case "tool_use":
				out = append(out, Turn{KindTool, c.Name + " " + clip(compactJSON(c.Input), DefaultClip)})
			case "tool_result":
				kind := KindToolResult
				text := clip(resultText(c.Content), DefaultClip)
				if c.IsError {
					text = "error: " + text
				}
				out = append(out, Turn{kind, text})
			}
		}
	case "result":
		out = append(out, Turn{KindResult, fmt.Sprintf("session ended: %s, %d turns, $%.2f", orDash(m.Subtype), m.NumTurns, m.TotalCostUSD)})
	}
	return out
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// compactJSON is raw without insignificant white space (raw itself if it is not JSON).
func compactJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return string(raw)
	}
	return b.String()
}

// resultText is a tool result's content: a string, or the text of its blocks.
func resultText(raw json.RawMessage) string {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s
	}
	var blocks []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(raw, &blocks); err == nil {
		var parts []string
		for _, b := range blocks {
			if b.Text != "" {
				parts = append(parts, b.Text)
			} else if b.Type != "" {
				parts = append(parts, "("+b.Type+")")
			}
		}
		return strings.Join(parts, "\n")
	}
	return compactJSON(raw)
}

// clip cuts s to at most n bytes, between runes, saying how much it left out.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… (%d more bytes)", s[:cut], len(s)-cut)
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
