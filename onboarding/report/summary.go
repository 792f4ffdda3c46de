package report

import (
	"fmt"

	"github.com/nvidia/adbot/onboarding/comments"
)

// Summary renders the Phase 12 summary report: every item SKILL.md lists,
// in its order (model overview and unique features; tricky parts; files
// created or modified; the test results table; known limitations; the
// reviewer's result and iterations; the end-to-end result, runs and
// generation quality; the registry entry and config YAMLs; ALL prompt→output
// pairs of the final run, verbatim; the support matrix row and footnote;
// the cookbook), then the commands to reproduce. The text may exceed one
// comment; SummaryComments cuts it to fit.
func Summary(s SummaryInput) string {
	return summary(s, false)
}

// SummaryComments returns the summary as comment bodies within
// comments.MaxBody: the whole report when it fits, else the report with the
// prompt→output pairs moved to numbered follow-up comments.
func SummaryComments(s SummaryInput) ([]string, error) {
	body := summary(s, false)
	if fits(body) {
		return []string{body}, nil
	}
	body = summary(s, true)
	pairs, err := comments.Split(comments.Post{
		Title: fmt.Sprintf("Prompts and outputs of the final end-to-end run of %s", s.ModelID),
		Intro: "Every prompt→output pair, verbatim.",
		Log:   PairsText(s.E2E.Verdict.Pairs),
	})
	if err != nil {
		return nil, fmt.Errorf("split prompt→output pairs of %s: %w", s.ModelID, err)
	}
	if !fits(body) {
		// Still too long (huge file lists or registry text): post the
		// Markdown itself in parts.
		parts, err := comments.Split(comments.Post{Title: "Onboarding summary of " + s.ModelID, Log: body, Lang: "markdown"})
		if err != nil {
			return nil, fmt.Errorf("split summary of %s: %w", s.ModelID, err)
		}
		return append(parts, pairs...), nil
	}
	return append([]string{body}, pairs...), nil
}

func summary(s SummaryInput, pairsElsewhere bool) string {
	var b md
	b.f("%sOnboarding summary: %s\n\n", comments.Prefix, code(s.ModelID))
	e2eStatus := "failed"
	if s.E2E.Verdict.OK {
		e2eStatus = "succeeded"
	}
	b.f("**Result:** %s · end-to-end run %s · unit tests: %s\n", reviewLine(s.Review), e2eStatus, orDash(s.Pytest.SummaryLine))

	b.heading("1. Model overview")
	b.f("**Model:** %s · **Architecture:** %s\n", hfLink(s.ModelID), code(orDash(s.Architecture)))
	if s.Overview != "" {
		b.line("")
		b.line(s.Overview)
	}
	b.line("")
	b.line("Unique features:")
	b.list(s.Features, "None noted.")

	b.heading("2. Tricky parts needing human review")
	b.list(s.Tricky, "None noted.")

	b.heading("3. Files created or modified")
	files := make([][3]string, 0, len(s.Files))
	for _, f := range s.Files {
		files = append(files, [3]string{f.Path, f.Action, f.Note})
	}
	b.codeTable([3]string{"File", "Change", "Note"}, files, "None.")

	b.heading("4. Test results")
	tests := make([][3]string, 0, len(s.Tests))
	for _, t := range s.Tests {
		tests = append(tests, [3]string{t.Name, t.Validates, t.Outcome})
	}
	b.codeTable([3]string{"Test", "Validates", "Result"}, tests, "No test results.")
	if s.Pytest.SummaryLine != "" {
		b.line("")
		b.f("pytest: %s", oneLine(s.Pytest.SummaryLine))
		if s.Pytest.Commit != "" {
			b.f(" (on commit %s)", code(s.Pytest.Commit))
		}
		b.line("")
	}

	b.heading("5. Known limitations")
	b.list(s.Limitations, "None noted.")

	b.heading("6. Reviewer result")
	writeReview(&b, s.Review)

	b.heading("7. AutoDeploy end-to-end run")
	writeE2E(&b, s.E2E)

	b.heading("8. Registry")
	action := s.RegistryAction
	if action == "" {
		action = "added or updated"
	}
	if s.RegistryEntry != "" {
		b.f("`models.yaml` entry (%s):\n\n", action)
		b.WriteString(comments.Fence(s.RegistryEntry, "yaml"))
	} else {
		b.line("_No `models.yaml` entry was added or changed._")
	}
	b.line("")
	b.line("Config YAMLs created:")
	b.list(codes(s.Configs), "None.")

	b.heading("9. Prompts and outputs of the final run")
	if pairsElsewhere {
		b.f("All %d prompt→output pairs, verbatim, are in the `[AGENT]` comments that follow this one (too long for one comment).\n", len(s.E2E.Verdict.Pairs))
	} else {
		b.line("Verbatim, from the final `build_and_run_ad.py --args.yaml-extra` run.")
		b.line("")
		writePairs(&b, s.E2E.Verdict.Pairs)
	}

	b.heading("10. Model support matrix")
	if s.SupportMatrixRow != "" {
		b.line("Row added to `docs/source/models/supported-models.md`:")
		b.line("")
		b.WriteString(comments.Fence(s.SupportMatrixRow, "markdown"))
		b.line("")
		if s.Footnote != "" {
			b.line("Footnote:")
			b.line("")
			b.WriteString(comments.Fence(s.Footnote, "markdown"))
		} else {
			b.line("No footnote.")
		}
	} else {
		b.line("_The support matrix was not changed._")
	}

	b.heading("11. AutoDeploy cookbook")
	if s.Cookbook != "" {
		b.line(code(s.Cookbook))
	} else {
		b.line("_No cookbook was created._")
	}

	b.heading("Commands to reproduce")
	writeCommands(&b, s.ModelID, s.E2E.GPUs, s.ConfigYAML, s.TestFile, s.Pytest.Command)
	return b.String()
}

// codeTable writes rows under head as a table whose first column is code (a
// path, a test name) and whose other cells show a dash when empty, or none
// in italics when there are no rows.
func (b *md) codeTable(head [3]string, rows [][3]string, none string) {
	if len(rows) == 0 {
		b.line("_" + none + "_")
		return
	}
	b.f("| %s | %s | %s |\n", head[0], head[1], head[2])
	b.line("| --- | --- | --- |")
	for _, r := range rows {
		b.f("| %s | %s | %s |\n", code(r[0]), cell(orDash(r[1])), cell(orDash(r[2])))
	}
}

func codes(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = code(s)
	}
	return out
}
