// Package report renders the onboarding workflow's two written outputs as
// GitHub Markdown: the summary report of Phase 12 (Summary) and the pull
// request text of Phase 13 (PRBody), both from
// .claude/skills/ad-model-onboard/SKILL.md in TensorRT-LLM. Prompts,
// outputs and logs are copied verbatim inside fences nothing in them can
// close; when a text would exceed GitHub's comment limit, the long logs move
// to follow-up [AGENT] comments (posted with comments.Split).
package report

import (
	"fmt"
	"strings"

	"github.com/nvidia/adbot/onboarding/e2e"
	"github.com/nvidia/adbot/onboarding/review"
)

// ConfigDir is where the workflow keeps the standalone config YAMLs.
const ConfigDir = "examples/auto_deploy/model_registry/configs"

// RunScript is the end-to-end script.
const RunScript = "examples/auto_deploy/build_and_run_ad.py"

// Phase9Command is the exact end-to-end command of the workflow's Phase 9:
// CUDA_VISIBLE_DEVICES=<gpus> python examples/auto_deploy/build_and_run_ad.py
// --model <ID> --args.yaml-extra examples/auto_deploy/model_registry/configs/<config>.
// config is the YAML's file name (".yaml" is added when missing) or a path
// that already holds ConfigDir. gpus empty leaves out CUDA_VISIBLE_DEVICES.
func Phase9Command(gpus, modelID, config string) string {
	cmd := fmt.Sprintf("python %s --model %s --args.yaml-extra %s", RunScript, modelID, ConfigPath(config))
	if gpus != "" {
		cmd = "CUDA_VISIBLE_DEVICES=" + gpus + " " + cmd
	}
	return cmd
}

// ConfigPath returns the repository path of a standalone config YAML.
func ConfigPath(config string) string {
	if !strings.HasSuffix(config, ".yaml") && !strings.HasSuffix(config, ".yml") {
		config += ".yaml"
	}
	if strings.Contains(config, "/") {
		return config
	}
	return ConfigDir + "/" + config
}

// PytestCommand is the command that runs a model's unit tests verbosely.
func PytestCommand(testFile string) string {
	return "pytest " + testFile + " -v"
}

// File is a file the onboarding created or changed.
type File struct {
	Path string
	// Action is "created" or "modified" (or "deleted").
	Action string
	// Note says what changed, optional.
	Note string
}

// TestRow is one row of the test results table.
type TestRow struct {
	Name      string
	Validates string
	// Outcome is PASS, FAIL, SKIP, ... as reported.
	Outcome string
}

// E2E is the end-to-end result the reports show.
type E2E struct {
	// Verdict is e2e.Judge's judgement of the final run.
	Verdict e2e.Verdict
	// Iterations is the number of runs it took.
	Iterations int
	// Quality is the judgement of the final generation ("coherent", ...).
	Quality string
	// GPUs is the CUDA_VISIBLE_DEVICES value of the final run.
	GPUs string
}

// ReviewResult is the reviewer's final verdict and the number of review
// rounds.
type ReviewResult struct {
	Review     *review.Review
	Iterations int
}

// Pytest is one unit-test run: its command, console output and verdict.
type Pytest struct {
	Command string
	// Output is the console output, verbatim.
	Output string
	// SummaryLine is pytest's final line ("5 passed in 3.1s"), if known.
	SummaryLine string
	// Commit is the commit the tests ran on.
	Commit string
}

// SummaryInput is everything Phase 12's report lists.
type SummaryInput struct {
	// ModelID is the HuggingFace id, e.g. "Qwen/Qwen3-0.6B".
	ModelID string
	// Architecture is the registered class, e.g. "Qwen3ForCausalLM".
	Architecture string
	// Overview describes the model; Features lists what is unique to it.
	Overview string
	Features []string
	// Tricky lists the parts that need a human reviewer's eye.
	Tricky []string
	Files  []File
	Tests  []TestRow
	// Limitations lists known limitations.
	Limitations []string
	Review      ReviewResult
	E2E         E2E
	// RegistryEntry is the models.yaml entry added or updated, verbatim;
	// RegistryAction says which ("added", "updated", "unchanged").
	RegistryEntry  string
	RegistryAction string
	// Configs are the config YAML files created (repository paths).
	Configs []string
	// ConfigYAML is the standalone config used by the Phase 9 command.
	ConfigYAML string
	// SupportMatrixRow is the row added to supported-models.md, verbatim;
	// Footnote the footnote used, if any.
	SupportMatrixRow string
	Footnote         string
	// Cookbook is the path of the new cookbook notebook.
	Cookbook string
	// TestFile is the model's unit test file; Pytest its last run.
	TestFile string
	Pytest   Pytest
}
