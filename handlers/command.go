package handlers

import (
	"net/url"
	"strings"
	"unicode"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/onboarding/hub"
)

// Keyword starts every command: "onboard <model-id>", "/onboard status".
const Keyword = "onboard"

// AgentPrefix begins every comment the bot writes; such comments are never commands.
const AgentPrefix = "[AGENT]"

// Parsed is what a piece of text asks of adbot.
type Parsed struct {
	// Kind is the command; "" means the text is a plain remark (feedback on a
	// job's pull request, nothing elsewhere).
	Kind bus.CommandKind
	// ModelID is the raw model id an onboard command names: NOT validated.
	ModelID string
	// Unknown is the word after the keyword when it is no known subcommand
	// (Kind is then CmdHelp, so the reply can say what was not understood).
	Unknown string
}

// subcommands are the words "/onboard <word>" accepts in a comment.
var subcommands = map[string]bus.CommandKind{
	"proceed": bus.CmdProceed,
	"cancel":  bus.CmdCancel,
	"retry":   bus.CmdRetry,
	"status":  bus.CmdStatus,
	"help":    bus.CmdHelp,
}

// closingPhrases end a job when a comment says just that (see ParseComment),
// compared after normalize.
var closingPhrases = []string{
	"lgtm",
	"looks good were done",
	"looks good we are done",
	"no more changes needed",
	"agent work complete",
}

// ParseIssue finds an onboard command in an issue: "onboard <model-id>" as the
// title or as the first non-empty line of the body. When both hold one, the
// one whose id is well-formed wins, the title first; a malformed id is still
// returned (the reply says what is wrong with it).
func ParseIssue(title, body string) (modelID string, ok bool) {
	tid, tok := parseOnboardLine(title)
	if tok && hub.ValidateModelID(tid) == nil {
		return tid, true
	}
	bid, bok := parseOnboardLine(firstLine(body))
	if bok && hub.ValidateModelID(bid) == nil {
		return bid, true
	}
	if tok {
		return tid, true
	}
	return bid, bok
}

// ParseLabeledTitle finds the model id in the title of an issue that was given
// the trigger label: "onboard <model-id>", a bare "<org>/<name>" or a
// huggingface.co URL. A title that holds none gives ok false.
func ParseLabeledTitle(title string) (modelID string, ok bool) {
	if id, ok := parseOnboardLine(title); ok {
		return id, true
	}
	arg := cleanArg(firstLine(title))
	if arg == "" || strings.ContainsFunc(arg, unicode.IsSpace) {
		return "", false
	}
	if id, ok := fromHubURL(arg); ok {
		return id, true
	}
	if strings.Contains(arg, "/") {
		return arg, true
	}
	return "", false
}

// ParseComment reads a comment (issue comment, review comment or review body).
// Only its first non-empty line can hold a command:
//
//   - "/onboard proceed|cancel|retry|status|help" (the slash is optional, the
//     case is free, trailing punctuation is ignored); a bare "/onboard" is help
//     and "/onboard <other>" is help with Unknown set, unless <other> reads as a
//     model id, which makes an onboard command (the caller decides where one
//     is allowed);
//   - a closing phrase ("LGTM", "looks good, we're done", "no more changes
//     needed", "agent work complete"; case, punctuation and emoji ignored) is
//     CmdEnd, but only when it is the whole comment: the first line, with
//     nothing after it but blank or quoted ("> ...") lines. "LGTM, but rename
//     x" or "LGTM" followed by a list of nits is feedback, so that no remark is
//     ever dropped; a reviewer who wants to end says so on its own line.
//
// Anything else is a plain remark (Kind "").
func ParseComment(body string) Parsed {
	first, rest := splitFirstLine(body)
	if _, arg, ok := afterKeyword(first); ok {
		if arg == "" {
			return Parsed{Kind: bus.CmdHelp}
		}
		word := strings.ToLower(strings.TrimRight(strings.Fields(arg)[0], trailingPunct))
		if k, ok := subcommands[word]; ok {
			return Parsed{Kind: k}
		}
		if id, ok := onboardArg(arg); ok && strings.Contains(id, "/") {
			return Parsed{Kind: bus.CmdOnboard, ModelID: id}
		}
		w := arg
		if i := strings.IndexFunc(w, unicode.IsSpace); i >= 0 {
			w = w[:i]
		}
		return Parsed{Kind: bus.CmdHelp, Unknown: clip(w, 40)}
	}
	if isClosingPhrase(first) && onlyQuotes(rest) {
		return Parsed{Kind: bus.CmdEnd}
	}
	return Parsed{}
}

// IsAgentComment reports whether body was written by the bot.
func IsAgentComment(body string) bool {
	return strings.HasPrefix(strings.TrimLeftFunc(body, unicode.IsSpace), AgentPrefix)
}

const trailingPunct = ".,;:!?"

// parseOnboardLine reads "onboard <model-id>" (optional leading '/', optional
// ':' after the keyword). The id is the argument's one token, or the whole
// argument when its first token contains a '/' (so "onboard Qwen/X please"
// reaches validation and gets a precise reply, while "Onboard the new intern"
// is no command).
func parseOnboardLine(line string) (string, bool) {
	_, arg, ok := afterKeyword(firstLine(line))
	if !ok || arg == "" {
		return "", false
	}
	return onboardArg(arg)
}

func onboardArg(arg string) (string, bool) {
	arg = cleanArg(arg)
	if arg == "" {
		return "", false
	}
	fields := strings.Fields(arg)
	if id, ok := fromHubURL(fields[0]); ok && len(fields) == 1 {
		return id, true
	}
	if len(fields) == 1 {
		return fields[0], true
	}
	if strings.Contains(fields[0], "/") {
		return arg, true
	}
	return "", false
}

// afterKeyword matches a line that starts with the keyword as a whole word,
// optionally after '/', and returns the rest, trimmed.
func afterKeyword(line string) (keyword, arg string, ok bool) {
	s := strings.TrimSpace(line)
	s = strings.TrimPrefix(s, "/")
	if len(s) < len(Keyword) || !strings.EqualFold(s[:len(Keyword)], Keyword) {
		return "", "", false
	}
	rest := s[len(Keyword):]
	if rest != "" {
		r := rest[0]
		if r != ':' && r != ' ' && r != '\t' {
			return "", "", false // "onboarding", "onboard-x"
		}
	}
	rest = strings.TrimPrefix(rest, ":")
	return s[:len(Keyword)], strings.TrimSpace(rest), true
}

// cleanArg trims whitespace, trailing punctuation and one pair of wrapping
// backticks, quotes, brackets or parentheses; a Markdown link
// "[text](url)" becomes its URL when that is a Hub link, else its text.
func cleanArg(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimRight(s, trailingPunct)
	if text, link, ok := markdownLink(s); ok {
		if _, hub := fromHubURL(link); hub {
			return link
		}
		s = text
	}
	for _, p := range [][2]string{{"`", "`"}, {"\"", "\""}, {"'", "'"}, {"<", ">"}, {"**", "**"}, {"(", ")"}, {"[", "]"}} {
		if len(s) >= len(p[0])+len(p[1]) && strings.HasPrefix(s, p[0]) && strings.HasSuffix(s, p[1]) {
			s = strings.TrimSpace(s[len(p[0]) : len(s)-len(p[1])])
			break
		}
	}
	return strings.TrimRight(s, trailingPunct)
}

// markdownLink splits "[text](url)", the whole of s, into its parts.
func markdownLink(s string) (text, link string, ok bool) {
	if !strings.HasPrefix(s, "[") || !strings.HasSuffix(s, ")") {
		return "", "", false
	}
	text, link, ok = strings.Cut(s[1:len(s)-1], "](")
	if !ok || text == "" || link == "" || strings.ContainsAny(text, "[]") || strings.ContainsAny(link, "() \t") {
		return "", "", false
	}
	return text, link, true
}

// fromHubURL turns https://huggingface.co/<org>/<name>[/...] (or hf.co) into
// <org>/<name>.
func fromHubURL(s string) (string, bool) {
	if !strings.Contains(s, "://") {
		if l := strings.ToLower(s); strings.HasPrefix(l, "huggingface.co/") || strings.HasPrefix(l, "hf.co/") {
			s = "https://" + s
		} else {
			return "", false
		}
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return "", false
	}
	host := strings.TrimPrefix(strings.ToLower(u.Hostname()), "www.")
	if host != "huggingface.co" && host != "hf.co" {
		return "", false
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) >= 1 && parts[0] == "models" {
		parts = parts[1:]
	}
	if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
		return "", false
	}
	return parts[0] + "/" + parts[1], true
}

func firstLine(s string) string {
	l, _ := splitFirstLine(s)
	return l
}

// splitFirstLine returns the first non-empty line and what follows it.
func splitFirstLine(s string) (first, rest string) {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	for {
		line, after, found := strings.Cut(s, "\n")
		if strings.TrimSpace(line) != "" || !found {
			return strings.TrimSpace(line), after
		}
		s = after
	}
}

func onlyQuotes(s string) bool {
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, ">") {
			return false
		}
	}
	return true
}

func isClosingPhrase(line string) bool {
	n := normalize(line)
	for _, p := range closingPhrases {
		if n == p {
			return true
		}
	}
	return false
}

// normalize lower-cases s, drops everything but letters, digits and spaces
// (punctuation, emoji, ":shipit:"'s colons), folds apostrophes away and
// collapses whitespace.
func normalize(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		case unicode.IsSpace(r) || r == ',' || r == '-' || r == '—' || r == '–':
			b.WriteByte(' ')
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// clip shortens s to at most n runes.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
