package handlers

import (
	"path"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/onboarding/hub"
)

func TestParseIssue(t *testing.T) {
	tests := []struct {
		title, body string
		want        string
		ok          bool
	}{
		{"onboard Qwen/Qwen3-0.6B", "", "Qwen/Qwen3-0.6B", true},
		{"Onboard   Qwen/Qwen3-0.6B.", "", "Qwen/Qwen3-0.6B", true},
		{"/ONBOARD: `Qwen/Qwen3-0.6B`", "", "Qwen/Qwen3-0.6B", true},
		{"onboard https://huggingface.co/Qwen/Qwen3-0.6B/tree/main", "", "Qwen/Qwen3-0.6B", true},
		{"onboard huggingface.co/Qwen/Qwen3-0.6B", "", "Qwen/Qwen3-0.6B", true},
		{"onboard https://hf.co/models/Qwen/Qwen3-0.6B", "", "Qwen/Qwen3-0.6B", true},
		{"onboard <meta-llama/Llama-3.1-8B>!", "", "meta-llama/Llama-3.1-8B", true},
		// Parentheses, brackets and Markdown links were kept as part of the id.
		{"onboard (Qwen/Qwen3-0.6B).", "", "Qwen/Qwen3-0.6B", true},
		{"onboard [Qwen/Qwen3-0.6B]", "", "Qwen/Qwen3-0.6B", true},
		{"Model request", "onboard [Qwen3](https://huggingface.co/Qwen/Qwen3-0.6B)", "Qwen/Qwen3-0.6B", true},
		{"Model request", "onboard [Qwen/Qwen3-0.6B](https://example.com/x)", "Qwen/Qwen3-0.6B", true},
		{"New model request", "\n\n  onboard deepseek-ai/DeepSeek-V3  \nIt is big.", "deepseek-ai/DeepSeek-V3", true},
		{"New model request", "please onboard deepseek-ai/DeepSeek-V3", "", false},
		// The title's malformed id loses to the body's well-formed one.
		{"onboard a model", "onboard Qwen/Qwen3-8B", "Qwen/Qwen3-8B", true},
		{"onboard llama", "", "llama", true},
		{"onboard Qwen/Qwen3-0.6B please", "", "Qwen/Qwen3-0.6B please", true},
		{"onboard ../../etc/passwd", "", "../../etc/passwd", true},
		{"Onboard the new intern", "", "", false},
		{"Onboarding docs are wrong", "", "", false},
		{"onboard", "", "", false},
		{"onboard-x a/b", "", "", false},
		{"Spelling error in the README file", "It looks like you accidently spelled 'commit' with two 't's.", "", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		got, ok := ParseIssue(tt.title, tt.body)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseIssue(%q, %q) = %q, %v; want %q, %v", tt.title, tt.body, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseLabeledTitle(t *testing.T) {
	tests := []struct {
		title, want string
		ok          bool
	}{
		{"Qwen/Qwen3-0.6B", "Qwen/Qwen3-0.6B", true},
		{"onboard Qwen/Qwen3-0.6B", "Qwen/Qwen3-0.6B", true},
		{"https://huggingface.co/google/gemma-3-27b-it", "google/gemma-3-27b-it", true},
		{"`zai-org/GLM-5`", "zai-org/GLM-5", true},
		{"Spelling error in the README file", "", false},
		{"gemma", "", false},
	}
	for _, tt := range tests {
		got, ok := ParseLabeledTitle(tt.title)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseLabeledTitle(%q) = %q, %v; want %q, %v", tt.title, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseComment(t *testing.T) {
	tests := []struct {
		body string
		want Parsed
	}{
		{"/onboard proceed", Parsed{Kind: bus.CmdProceed}},
		{"  /Onboard   CANCEL. ", Parsed{Kind: bus.CmdCancel}},
		{"onboard retry\nthe runner died", Parsed{Kind: bus.CmdRetry}},
		{"\r\n/onboard status\r\n", Parsed{Kind: bus.CmdStatus}},
		{"/onboard help", Parsed{Kind: bus.CmdHelp}},
		{"/onboard status please", Parsed{Kind: bus.CmdStatus}},
		{"/onboard: cancel, the model is wrong", Parsed{Kind: bus.CmdCancel}},
		{"/onboard", Parsed{Kind: bus.CmdHelp}},
		{"/onboard frobnicate now", Parsed{Kind: bus.CmdHelp, Unknown: "frobnicate"}},
		{"/onboard Qwen/Qwen3-0.6B", Parsed{Kind: bus.CmdOnboard, ModelID: "Qwen/Qwen3-0.6B"}},
		{"/onboard https://huggingface.co/Qwen/Qwen3-0.6B", Parsed{Kind: bus.CmdOnboard, ModelID: "Qwen/Qwen3-0.6B"}},
		{"LGTM", Parsed{Kind: bus.CmdEnd}},
		{"lgtm!! 🚀", Parsed{Kind: bus.CmdEnd}},
		{"Looks good, we're done.", Parsed{Kind: bus.CmdEnd}},
		{"Looks good — we’re done", Parsed{Kind: bus.CmdEnd}},
		{"No more changes needed", Parsed{Kind: bus.CmdEnd}},
		{"agent work complete", Parsed{Kind: bus.CmdEnd}},
		{"LGTM\n\n> quoted earlier text\n", Parsed{Kind: bus.CmdEnd}},
		// Feedback, not an end: more than the phrase.
		{"LGTM\n- but rename foo", Parsed{}},
		{"LGTM, but rename foo", Parsed{}},
		{"This mostly looks lgtm to me but the registry entry is wrong", Parsed{}},
		{"/build", Parsed{}},
		{"please use world_size_2.yaml", Parsed{}},
		{"", Parsed{}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(ParseComment(tt.body), tt.want); diff != "" {
			t.Errorf("ParseComment(%q) (-got +want):\n%s", tt.body, diff)
		}
	}
}

func TestIsAgentComment(t *testing.T) {
	for body, want := range map[string]bool{
		"[AGENT] status":       true,
		"\n  [AGENT] log":      true,
		"[agent] lower":        false,
		"quoting [AGENT] text": false,
	} {
		if got := IsAgentComment(body); got != want {
			t.Errorf("IsAgentComment(%q) = %v, want %v", body, got, want)
		}
	}
}

// FuzzParseCommand checks the parser's promises on any text: no panic; an
// onboard id is never empty and carries no line break; a well-formed id is
// text that appeared in the input (or came from a Hub URL in it); a bot
// comment is recognized whatever follows the prefix.
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{
		"onboard Qwen/Qwen3-0.6B", "/onboard proceed", "LGTM", "looks good, we're done",
		"onboard https://huggingface.co/a/b", "onboard `a/b`.", "/onboard", "onboard ../x",
		"onboard a/b\nc", "\x00onboard", "onboard \u2028a/b", "[AGENT] onboard a/b",
	} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, title, body string) {
		id, ok := ParseIssue(title, body)
		check := func(id string) {
			if id == "" {
				t.Fatalf("onboard with an empty id from %q / %q", title, body)
			}
			if strings.ContainsAny(id, "\n\r") {
				t.Fatalf("id %q spans lines", id)
			}
			if hub.ValidateModelID(id) == nil && !strings.Contains(title+"\n"+body, id) &&
				!strings.Contains(strings.ToLower(title+body), "hf.co") && !strings.Contains(strings.ToLower(title+body), "huggingface.co") {
				t.Fatalf("id %q is not in the input", id)
			}
		}
		if ok {
			check(id)
		}
		p := ParseComment(body)
		if p.Kind == bus.CmdOnboard {
			check(p.ModelID)
		}
		if p.Kind != bus.CmdHelp && p.Unknown != "" {
			t.Fatalf("Unknown %q set for %s", p.Unknown, p.Kind)
		}
		if !utf8.ValidString(body) {
			return
		}
		if !IsAgentComment(AgentPrefix + body) {
			t.Fatalf("prefixed comment not recognized")
		}
	})
}

// FuzzModelID checks the way from text to a model id that reaches a path or a
// branch name: whatever the parser extracts and hub.ValidateModelID accepts is
// exactly "<org>/<name>" of safe characters, clean as a relative path, and
// within a git branch name's rules.
func FuzzModelID(f *testing.F) {
	for _, s := range []string{
		"onboard Qwen/Qwen3-0.6B", "onboard ../x/y", "onboard a/../b", "onboard a/b/c", "onboard .a/b",
		"onboard a/b.", "onboard a/b.lock", "onboard a/-b", "onboard a//b", "onboard a/b@{1}", "onboard a/b c",
		"onboard https://huggingface.co/a/b/../../c", "onboard a/b\x00", "onboard Ａ/Ｂ", "onboard a/b~1^2:x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		candidates := []string{}
		if id, ok := ParseIssue(text, ""); ok {
			candidates = append(candidates, id)
		}
		if p := ParseComment(text); p.Kind == bus.CmdOnboard {
			candidates = append(candidates, p.ModelID)
		}
		candidates = append(candidates, text) // the check itself, on raw input
		for _, id := range candidates {
			if hub.ValidateModelID(id) != nil {
				continue
			}
			org, name, ok := strings.Cut(id, "/")
			if !ok || org == "" || name == "" || strings.Contains(name, "/") {
				t.Fatalf("%q accepted without exactly one '/' between two parts", id)
			}
			for _, r := range id {
				if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./", r)) {
					t.Fatalf("%q accepted with %q", id, r)
				}
			}
			if path.Clean(id) != id || strings.HasPrefix(id, "/") || strings.Contains(id, "..") {
				t.Fatalf("%q is not a clean relative path", id)
			}
			for _, part := range []string{org, name} {
				if part == "." || part == ".." || strings.HasPrefix(part, ".") || strings.HasPrefix(part, "-") {
					t.Fatalf("%q has a part git or a shell would misread", id)
				}
			}
			// git check-ref-format: no "..", "@{", control characters, space, ~^:?*[\
			branch := "adbot/" + id + "-1"
			if strings.Contains(branch, "@{") || strings.ContainsAny(branch, " ~^:?*[\\") || strings.Contains(branch, "//") {
				t.Fatalf("branch %q breaks git's rules", branch)
			}
		}
	})
}
