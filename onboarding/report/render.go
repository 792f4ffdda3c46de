package report

import (
	"fmt"
	"strings"

	"github.com/nvidia/adbot/onboarding/comments"
	"github.com/nvidia/adbot/onboarding/e2e"
	"github.com/nvidia/adbot/onboarding/review"
)

// md helps write Markdown.
type md struct{ strings.Builder }

func (b *md) f(format string, a ...any) { fmt.Fprintf(b, format, a...) }

func (b *md) line(s string) {
	b.WriteString(s)
	b.WriteString("\n")
}

func (b *md) heading(s string) {
	b.WriteString("\n## ")
	b.WriteString(s)
	b.WriteString("\n\n")
}

// list writes items as a bullet list, or none when there are none.
func (b *md) list(items []string, none string) {
	if len(items) == 0 {
		b.line("_" + none + "_")
		return
	}
	for _, it := range items {
		b.line("- " + oneLine(it))
	}
}

// code returns s as an inline code span that s cannot end early.
func code(s string) string {
	s = oneLine(s)
	if s == "" {
		return "` `"
	}
	run, cur := 0, 0
	for _, r := range s {
		if r == '`' {
			cur++
			run = max(run, cur)
		} else {
			cur = 0
		}
	}
	ticks := strings.Repeat("`", run+1)
	if run > 0 || strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		return ticks + " " + s + " " + ticks
	}
	return ticks + s + ticks
}

// cell makes s safe in a table cell.
func cell(s string) string {
	return strings.ReplaceAll(oneLine(s), "|", `\|`)
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "—"
	}
	return s
}

// hfLink links a model id to its HuggingFace page.
func hfLink(id string) string {
	return fmt.Sprintf("[%s](https://huggingface.co/%s)", code(id), id)
}

// writePairs writes every prompt→output pair verbatim.
func writePairs(b *md, pairs []e2e.Pair) {
	if len(pairs) == 0 {
		b.line("_No prompt→output pairs were produced._")
		return
	}
	for i, p := range pairs {
		if i > 0 {
			b.line("")
		}
		b.f("**[PROMPT %d]**", p.Index)
		if p.Guessed {
			b.WriteString(" _(read from the log; where the prompt ends was guessed)_")
		}
		b.line("")
		b.line("")
		b.WriteString(comments.Fence(p.Prompt, "text"))
		b.line("")
		b.f("**[OUTPUT %d]**\n\n", p.Index)
		b.WriteString(comments.Fence(p.Output, "text"))
	}
}

// PairsText renders the pairs as plain text for a follow-up comment: each
// prompt and output verbatim under a marker line.
func PairsText(pairs []e2e.Pair) string {
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "===== PROMPT %d =====\n%s\n===== OUTPUT %d =====\n%s\n", p.Index, p.Prompt, p.Index, p.Output)
	}
	return b.String()
}

// reviewLine says in a few words what the reviewer concluded.
func reviewLine(r ReviewResult) string {
	if r.Review == nil {
		return "no reviewer verdict"
	}
	verdict := "FAIL"
	if r.Review.OK() {
		verdict = "PASS"
	}
	s := "reviewer " + verdict
	if r.Iterations > 0 {
		s += fmt.Sprintf(" after %d review iteration(s)", r.Iterations)
	}
	return s
}

func writeReview(b *md, r ReviewResult) {
	rv := r.Review
	if rv == nil {
		b.line("_The reviewer has not given a verdict._")
		return
	}
	if rv.OK() {
		b.WriteString("**PASS**")
	} else {
		b.WriteString("**FAIL**")
	}
	if r.Iterations > 0 {
		b.f(" after %d review iteration(s)", r.Iterations)
	}
	var pass, fail, na int
	for _, it := range rv.Items {
		switch it.Status {
		case review.Pass:
			pass++
		case review.Fail:
			fail++
		case review.NA:
			na++
		}
	}
	b.f(" — %d item(s) PASS, %d FAIL, %d N/A", pass, fail, na)
	if rv.Total >= 0 {
		b.f(" (the reviewer counted PASSED %s, FAILED %s)", count(rv.Passed, rv.Total), count(rv.Failed, rv.Total))
	}
	b.line(".")
	if failed := rv.FailedItems(); len(failed) > 0 {
		b.line("")
		b.line("| Item | Section | Location | Evidence |")
		b.line("| --- | --- | --- | --- |")
		for _, it := range failed {
			b.f("| %s | %s | %s | %s |\n", cell(it.ID), cell(orDash(it.Section)), cell(orDash(it.Location)), cell(orDash(it.Evidence)))
		}
	}
	if len(rv.Problems) > 0 {
		b.line("")
		b.line("Inconsistencies in the verdict:")
		b.list(rv.Problems, "")
	}
}

func count(n, total int) string {
	if n < 0 {
		return "?"
	}
	return fmt.Sprintf("%d/%d", n, total)
}

func writeE2E(b *md, e E2E) {
	v := e.Verdict
	if v.Reason == "" && len(v.Pairs) == 0 {
		b.line("_No end-to-end run was recorded._")
		return
	}
	status := "Failed"
	if v.OK {
		status = "Succeeded"
	}
	b.f("**%s** — %s.", status, v.Reason)
	if e.Iterations > 0 {
		b.f(" Runs: %d.", e.Iterations)
	}
	b.line("")
	if e.Quality != "" {
		b.line("")
		b.line("Generation quality of the final run: " + oneLine(e.Quality))
	}
	if len(v.Mismatches) > 0 {
		b.line("")
		b.line("The log and the results JSON disagree:")
		var ms []string
		for _, m := range v.Mismatches {
			ms = append(ms, m.String())
		}
		b.list(ms, "")
	}
}

func writeCommands(b *md, modelID, gpus, config, testFile, pytestCmd string) {
	var cmds []string
	if modelID != "" && config != "" {
		cmds = append(cmds, Phase9Command(gpus, modelID, config))
	}
	if pytestCmd == "" && testFile != "" {
		pytestCmd = PytestCommand(testFile)
	}
	if pytestCmd != "" {
		cmds = append(cmds, pytestCmd)
	}
	if len(cmds) == 0 {
		b.line("_No command recorded._")
		return
	}
	b.WriteString(comments.Fence(strings.Join(cmds, "\n"), "bash"))
}

// fits reports whether a body is within GitHub's limit.
func fits(body string) bool { return len(body) <= comments.MaxBody }
