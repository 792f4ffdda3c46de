package workflow

import (
	"fmt"
	"strings"
)

// Every prompt starts with a task line and names the model and its two
// files, so that a transcript says at a glance what was asked (and a
// stand-in agent knows what to do).
func header(kind string, j Job, st *State) string {
	return fmt.Sprintf("adbot-task: %s\nModel: %s\nModel file: %s\nTest file: %s\n\n", kind, j.ModelID, st.ModelFile, st.TestFile)
}

const boundaries = "Do not run the end-to-end script, do not edit the model registry, the support matrix or the cookbook, " +
	"and do not commit, push or open pull requests: the runner does those and reports them. " +
	"Do not change anything under .claude/ or CLAUDE.md."

func modelPrompt(j Job, st *State) string {
	var b strings.Builder
	b.WriteString(header("model", j, st))
	fmt.Fprintf(&b, "Onboard the HuggingFace model %s (architecture %s, model type %s, revision %s) into TensorRT-LLM's AutoDeploy backend.\n\n",
		j.ModelID, j.Architecture, st.ModelType, shortSHA(j.Revision))
	b.WriteString("Follow the project skill .claude/skills/ad-model-onboard/SKILL.md, Phases 2 to 6 only:\n")
	fmt.Fprintf(&b, "- write a lean prefill-only model at %s using AutoDeploy canonical ops;\n", st.ModelFile)
	b.WriteString("- register it with AutoModelForCausalLMFactory.register_custom_model_cls at the bottom of the file;\n")
	b.WriteString("- keep the model input contract (input_ids, position_ids);\n")
	fmt.Fprintf(&b, "- write hierarchical tests at %s.\n\n", st.TestFile)
	if st.Gather.Snapshot != "" {
		fmt.Fprintf(&b, "The model's configuration and code files (no weights) are in %s.\n", st.Gather.Snapshot)
	}
	fmt.Fprintf(&b, "What the survey found:\n%s\n", st.Survey)
	b.WriteString(boundaries + "\n")
	return b.String()
}

func missingPrompt(j Job, st *State, missing []string) string {
	return header("fix-tests", j, st) + "These files do not exist yet: " + strings.Join(missing, ", ") +
		". Write them as the earlier task asked.\n\n" + boundaries + "\n"
}

func registerPrompt(j Job, st *State) string {
	return header("fix-review", j, st) + "The model file does not register the model: add " +
		"AutoModelForCausalLMFactory.register_custom_model_cls(\"<Config class>\", <ForCausalLM class>) at its bottom.\n\n" + boundaries + "\n"
}

func fixTestsPrompt(j Job, st *State, failures string) string {
	return header("fix-tests", j, st) + "The unit tests fail. Fix the model or the tests (never weaken a test to make it pass):\n\n" +
		"Command: " + st.Pytest.Command + "\n\n```text\n" + failures + "\n```\n\n" + boundaries + "\n"
}

// reviewPrompt names only the model and its two files: the reviewer starts
// from nothing the author said.
func reviewPrompt(j Job, st *State) string {
	return header("review", j, st) + "Review the AutoDeploy onboarding of this model with the ad-onboard-reviewer subagent " +
		"(.claude/agents/ad-onboard-reviewer.md). Change no file. Answer with its verdict verbatim, starting with the line " +
		"`REVIEW RESULT: PASS` or `REVIEW RESULT: FAIL`.\n"
}

func fixReviewPrompt(j Job, st *State, verdict string) string {
	return header("fix-review", j, st) + "An independent review failed. Fix every failed item:\n\n```text\n" + verdict + "\n```\n\n" + boundaries + "\n"
}

func fixE2EPrompt(j Job, st *State, reason string) string {
	return header("fix-e2e", j, st) + "The end-to-end run failed: " + reason + "\n\nCommand: " + st.E2E.Command +
		"\n\nConfig (" + st.ConfigName + "):\n```yaml\n" + st.E2E.ConfigYAML + "\n```\n\nLog (end):\n```text\n" + tail(st.E2E.Log, 16000) +
		"\n```\n\nFix the model so that it runs and generates coherent text.\n\n" + boundaries + "\n"
}

// feedbackPrompt hands the agent every remark of the batch, verbatim, as
// data: they come from reviewers with write access, as they read when the
// bot first saw them.
func feedbackPrompt(j Job, st *State, fb []Feedback) string {
	var b strings.Builder
	b.WriteString(header("feedback", j, st))
	fmt.Fprintf(&b, "Reviewers left %d remark(s) on pull request #%d. Address each one in the code; where a remark asks for no change, say why.\n\n", len(fb), j.PR)
	for i, f := range fb {
		fmt.Fprintf(&b, "### Remark %d by @%s", i+1, f.Author)
		if f.Path != "" {
			fmt.Fprintf(&b, " on %s", f.Path)
			if f.Line > 0 {
				fmt.Fprintf(&b, " line %d", f.Line)
			}
		}
		// A remark cannot close its own delimiter early.
		body := strings.ReplaceAll(f.Body, "</remark>", "<\\/remark>")
		b.WriteString("\n<remark>\n" + body + "\n</remark>\n\n")
	}
	b.WriteString("End with a short list of what you changed for each remark.\n\n" + boundaries + "\n")
	return b.String()
}
