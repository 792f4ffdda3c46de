package report

import (
	"fmt"

	"github.com/nvidia/adbot/onboarding/comments"
	"github.com/nvidia/adbot/onboarding/e2e"
)

// PRInput is what Phase 13's pull request text holds.
type PRInput struct {
	ModelID      string
	Architecture string
	// Overview is a short description of the change, optional.
	Overview string
	Files    []File
	// ConfigYAML is the standalone config YAML of the Phase 9 command; GPUs
	// the CUDA_VISIBLE_DEVICES of the run.
	ConfigYAML string
	GPUs       string
	// Pairs are the prompt→output pairs of the final run (e2e.Verdict.Pairs).
	Pairs []e2e.Pair
	// E2EReason is the run's verdict in words (e2e.Verdict.Reason), optional.
	E2EReason string
	// TestFile is the model's unit test file; Pytest its run on the pushed
	// commit.
	TestFile string
	Pytest   Pytest
	// Review is the reviewer's verdict, optional.
	Review ReviewResult
}

// PRTitle is the pull request's title.
func PRTitle(p PRInput) string {
	return fmt.Sprintf("[AutoDeploy] Onboard %s", p.ModelID)
}

// PRBody renders Phase 13's pull request text: every prompt→output pair of
// the final run verbatim, the reproducible command (the exact Phase 9
// command), and the pytest command with its complete output. When that is
// longer than GitHub allows, the body keeps a summary and says that the full
// logs follow in [AGENT] comments; those are returned as posts for
// comments.Split: the pytest output moves out first, else the pairs, else
// both.
func PRBody(p PRInput) (string, []comments.Post) {
	pytestPost := comments.Post{
		Title:     fmt.Sprintf("pytest output for %s", p.ModelID),
		Intro:     comments.Fence(pytestCommand(p), "bash"),
		Log:       p.Pytest.Output,
		Collapsed: true,
	}
	pairsPost := comments.Post{
		Title: fmt.Sprintf("Prompts and outputs of the end-to-end run of %s", p.ModelID),
		Intro: comments.Fence(Phase9Command(p.GPUs, p.ModelID, p.ConfigYAML), "bash"),
		Log:   PairsText(p.Pairs),
	}
	body := prBody(p, false, false)
	if fits(body) {
		return body, nil
	}
	if body = prBody(p, true, false); fits(body) {
		return body, []comments.Post{pytestPost}
	}
	if body = prBody(p, false, true); fits(body) {
		return body, []comments.Post{pairsPost}
	}
	return prBody(p, true, true), []comments.Post{pytestPost, pairsPost}
}

func pytestCommand(p PRInput) string {
	if p.Pytest.Command != "" {
		return p.Pytest.Command
	}
	return PytestCommand(p.TestFile)
}

func prBody(p PRInput, pytestElsewhere, pairsElsewhere bool) string {
	var b md
	b.f("%sOnboard %s", comments.Prefix, code(p.ModelID))
	if p.Architecture != "" {
		b.f(" (%s)", code(p.Architecture))
	}
	b.line(" to AutoDeploy")
	if p.Overview != "" {
		b.line("")
		b.line(p.Overview)
	}
	if pytestElsewhere || pairsElsewhere {
		b.line("")
		b.line("> The complete logs are too long for this description: they follow in `[AGENT]` comments on this pull request.")
	}

	b.heading("Changes")
	if len(p.Files) == 0 {
		b.line("_None listed._")
	}
	for _, f := range p.Files {
		line := "- " + code(f.Path) + " (" + orDash(f.Action) + ")"
		if f.Note != "" {
			line += " — " + oneLine(f.Note)
		}
		b.line(line)
	}
	if p.Review.Review != nil {
		b.line("")
		b.line("Independent review: " + reviewLine(p.Review) + ".")
	}

	b.heading("End-to-end run")
	b.line("Reproduce with:")
	b.line("")
	b.WriteString(comments.Fence(Phase9Command(p.GPUs, p.ModelID, p.ConfigYAML), "bash"))
	if p.E2EReason != "" {
		b.line("")
		b.line("Result: " + oneLine(p.E2EReason) + ".")
	}
	b.line("")
	if pairsElsewhere {
		b.f("All %d prompt→output pairs of this run, verbatim, follow in `[AGENT]` comments.\n", len(p.Pairs))
	} else {
		b.line("Every prompt and its complete output, verbatim:")
		b.line("")
		writePairs(&b, p.Pairs)
	}

	b.heading("Unit tests")
	b.WriteString(comments.Fence(pytestCommand(p), "bash"))
	b.line("")
	result := orDash(oneLine(p.Pytest.SummaryLine))
	if p.Pytest.Commit != "" {
		b.f("Result on %s: %s\n", code(p.Pytest.Commit), result)
	} else {
		b.f("Result: %s\n", result)
	}
	b.line("")
	if pytestElsewhere {
		b.line("The complete pytest output follows in `[AGENT]` comments.")
	} else {
		b.line("<details><summary>Complete pytest output</summary>")
		b.line("")
		b.WriteString(comments.Fence(p.Pytest.Output, "text"))
		b.line("")
		b.line("</details>")
	}
	return b.String()
}
