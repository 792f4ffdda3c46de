package report

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nvidia/adbot/internal/golden"
	"github.com/nvidia/adbot/onboarding/comments"
	"github.com/nvidia/adbot/onboarding/e2e"
	"github.com/nvidia/adbot/onboarding/pytest"
	"github.com/nvidia/adbot/onboarding/review"
)

// inputs builds a report from the sibling packages' real test material: the
// e2e run and results JSON, a real pytest log, a reviewer verdict.
func inputs(t *testing.T) (SummaryInput, PRInput) {
	t.Helper()
	res, err := e2e.ParseResultsFile(filepath.Join("..", "e2e", "testdata", "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	log, err := e2e.ParseLogFile(filepath.Join("..", "e2e", "testdata", "run-rank-first.log"), res.Prompts()...)
	if err != nil {
		t.Fatal(err)
	}
	verdict := e2e.Judge(e2e.Run{Log: log, Results: res, Expected: e2e.DefaultBatchSize})
	out, err := os.ReadFile(filepath.Join("..", "pytest", "testdata", "pass.log"))
	if err != nil {
		t.Fatal(err)
	}
	con, err := pytest.ParseConsole(strings.NewReader(string(out)))
	if err != nil {
		t.Fatal(err)
	}
	rv, err := review.ParseFile(filepath.Join("..", "review", "testdata", "pass.txt"))
	if err != nil {
		t.Fatal(err)
	}
	testFile := "tests/unittest/_torch/auto_deploy/unit/singlegpu/models/test_qwen3_modeling.py"
	pt := Pytest{Output: string(out), SummaryLine: con.SummaryLine, Commit: "3f2a9c1"}
	files := []File{
		{Path: "tensorrt_llm/_torch/auto_deploy/models/custom/modeling_qwen3.py", Action: "created", Note: "prefill-only Qwen3 with canonical ops"},
		{Path: "tensorrt_llm/_torch/auto_deploy/models/custom/__init__.py", Action: "modified", Note: "import and __all__ entry"},
		{Path: testFile, Action: "created"},
		{Path: "examples/auto_deploy/model_registry/models.yaml", Action: "modified", Note: "Qwen3 family entries"},
		{Path: "examples/auto_deploy/model_registry/configs/qwen3-0.6b.yaml", Action: "created"},
		{Path: "docs/source/models/supported-models.md", Action: "modified", Note: "row for Qwen3ForCausalLM | footnote [^5]"},
		{Path: "examples/auto_deploy/cookbooks/qwen3_0.6b_trtllm_cookbook.ipynb", Action: "created"},
	}
	s := SummaryInput{
		ModelID:      "Qwen/Qwen3-0.6B",
		Architecture: "Qwen3ForCausalLM",
		Overview:     "A 0.6B-parameter dense decoder with grouped-query attention and QK-norm; its embeddings are tied.",
		Features:     []string{"RMSNorm on queries and keys before RoPE (QK-norm)", "tied input and output embeddings"},
		Tricky:       []string{"QK-norm placement relative to RoPE", "the checkpoint stores lm_head although the config ties it"},
		Files:        files,
		Tests: []TestRow{
			{Name: "test_block_equivalence[1-8]", Validates: "MLP, attention and norm blocks vs HF", Outcome: "PASS"},
			{Name: "test_layer_equivalence", Validates: "one decoder layer vs HF (rmse 0.05)", Outcome: "PASS"},
			{Name: "test_full_model_equivalence", Validates: "logits vs HF", Outcome: "PASS"},
			{Name: "test_export", Validates: "torch_export_to_gm with dynamic batch | seq", Outcome: "PASS"},
		},
		Limitations:      []string{"sliding-window attention is not supported"},
		Review:           ReviewResult{Review: rv, Iterations: 2},
		E2E:              E2E{Verdict: verdict, Iterations: 3, Quality: "coherent and on topic for all ten prompts", GPUs: "0"},
		RegistryEntry:    "- name: Qwen/Qwen3-0.6B\n  yaml_extra: ['dashboard_default.yaml', 'world_size_1.yaml', 'qwen3-0.6b.yaml']\n",
		RegistryAction:   "added",
		Configs:          []string{"examples/auto_deploy/model_registry/configs/qwen3-0.6b.yaml"},
		ConfigYAML:       "qwen3-0.6b.yaml",
		SupportMatrixRow: "| `Qwen3ForCausalLM` [^5] | Qwen3 | `Qwen/Qwen3-0.6B` |",
		Footnote:         "[^5]: Supported via the [AutoDeploy](../features/auto_deploy/auto-deploy.md) backend.",
		Cookbook:         "examples/auto_deploy/cookbooks/qwen3_0.6b_trtllm_cookbook.ipynb",
		TestFile:         testFile,
		Pytest:           pt,
	}
	p := PRInput{
		ModelID:      s.ModelID,
		Architecture: s.Architecture,
		Overview:     "Adds a prefill-only AutoDeploy model for the Qwen3 family with hierarchical equivalence tests, registry entries, a support-matrix row and a cookbook.",
		Files:        files,
		ConfigYAML:   s.ConfigYAML,
		GPUs:         "0",
		Pairs:        verdict.Pairs,
		E2EReason:    verdict.Reason,
		TestFile:     testFile,
		Pytest:       pt,
		Review:       s.Review,
	}
	return s, p
}

const wantCommand = "CUDA_VISIBLE_DEVICES=0 python examples/auto_deploy/build_and_run_ad.py --model Qwen/Qwen3-0.6B --args.yaml-extra examples/auto_deploy/model_registry/configs/qwen3-0.6b.yaml"

// checkVerbatim checks that every pair and the commands appear whole.
func checkVerbatim(t *testing.T, text string, pairs []e2e.Pair) {
	t.Helper()
	for _, p := range pairs {
		if !strings.Contains(text, "\n"+p.Prompt+"\n") {
			t.Errorf("prompt %d not verbatim on its own lines: %q", p.Index, p.Prompt)
		}
		if !strings.Contains(text, "\n"+p.Output+"\n") {
			t.Errorf("output %d not verbatim: %q", p.Index, p.Output)
		}
	}
	if !strings.Contains(text, "\n"+wantCommand+"\n") {
		t.Errorf("Phase 9 command missing")
	}
}

func TestSummary(t *testing.T) {
	s, _ := inputs(t)
	got := Summary(s)
	golden.Check(t, "summary-success.golden.md", []byte(got))
	if !strings.HasPrefix(got, comments.Prefix) {
		t.Error("summary does not begin [AGENT]")
	}
	for i, h := range []string{"Model overview", "Tricky parts needing human review", "Files created or modified", "Test results", "Known limitations",
		"Reviewer result", "AutoDeploy end-to-end run", "Registry", "Prompts and outputs of the final run", "Model support matrix", "AutoDeploy cookbook"} {
		if !strings.Contains(got, fmt.Sprintf("\n## %d. %s\n", i+1, h)) {
			t.Errorf("Phase 12 item %d (%s) missing", i+1, h)
		}
	}
	checkVerbatim(t, got, s.E2E.Verdict.Pairs)
	if !strings.Contains(got, "\npytest "+s.TestFile+" -v\n") {
		t.Error("pytest command missing")
	}
	bodies, err := SummaryComments(s)
	if err != nil || len(bodies) != 1 || bodies[0] != got {
		t.Errorf("SummaryComments of a short summary: %d bodies, %v", len(bodies), err)
	}
}

func TestSummaryFailed(t *testing.T) {
	s, _ := inputs(t)
	rv, err := review.ParseFile(filepath.Join("..", "review", "testdata", "inconsistent.txt"))
	if err != nil {
		t.Fatal(err)
	}
	s.Review = ReviewResult{Review: rv, Iterations: 1}
	log, err := e2e.ParseLogFile(filepath.Join("..", "e2e", "testdata", "crash.log"))
	if err != nil {
		t.Fatal(err)
	}
	s.E2E = E2E{Verdict: e2e.Judge(e2e.Run{ExitCode: 1, Log: log, Expected: 10}), Iterations: 1, GPUs: "0,1"}
	s.Tests[1].Outcome = "FAIL"
	s.Pytest.SummaryLine = "1 failed, 4 passed in 2.31s"
	s.RegistryEntry, s.SupportMatrixRow, s.Cookbook, s.Footnote, s.Configs = "", "", "", "", nil
	s.Features, s.Tricky, s.Limitations = nil, nil, nil
	got := Summary(s)
	golden.Check(t, "summary-failed.golden.md", []byte(got))
	for _, want := range []string{"reviewer FAIL after 1 review iteration(s)", "header says PASS but 1 item(s) FAIL: F2", "**Failed** — exit status 1 after 2 prompt(s) answered.",
		"CUDA_VISIBLE_DEVICES=0,1 python"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q", want)
		}
	}
}

func TestPRBody(t *testing.T) {
	_, p := inputs(t)
	body, posts := PRBody(p)
	golden.Check(t, "pr-body.golden.md", []byte(body))
	if len(posts) != 0 {
		t.Errorf("%d follow-up posts for a short body", len(posts))
	}
	checkVerbatim(t, body, p.Pairs)
	if !strings.Contains(body, "\npytest "+p.TestFile+" -v\n") {
		t.Error("pytest command missing")
	}
	if !strings.Contains(body, p.Pytest.Output) {
		t.Error("pytest output not verbatim")
	}
	if PRTitle(p) != "[AutoDeploy] Onboard Qwen/Qwen3-0.6B" {
		t.Errorf("title %q", PRTitle(p))
	}
}

// bigPytestLog is a pytest log longer than one comment.
func bigPytestLog() string {
	var b strings.Builder
	b.WriteString("============================= test session starts ==============================\n")
	for i := 0; b.Len() < 90000; i++ {
		fmt.Fprintf(&b, "tests/unittest/_torch/auto_deploy/unit/singlegpu/models/test_qwen3_modeling.py::test_case[%d] PASSED\n", i)
	}
	b.WriteString("============================== 1000 passed in 12.00s ===============================\n")
	return b.String()
}

func TestPRBodyOverflow(t *testing.T) {
	_, p := inputs(t)
	short := p.Pytest.Output
	p.Pytest.Output = bigPytestLog()
	body, posts := PRBody(p)
	golden.Check(t, "pr-body-overflow-pytest.golden.md", []byte(body))
	if len(body) > comments.MaxBody {
		t.Fatalf("body is %d bytes", len(body))
	}
	if len(posts) != 1 || posts[0].Log != p.Pytest.Output {
		t.Fatalf("want the pytest log as the one follow-up, got %d posts", len(posts))
	}
	checkVerbatim(t, body, p.Pairs)
	parts, err := comments.Split(posts[0])
	if err != nil {
		t.Fatal(err)
	}
	if got, err := comments.Join(parts); err != nil || got != p.Pytest.Output {
		t.Errorf("follow-up does not give back the log: %v", err)
	}

	// Outputs so long that the pairs must move, and a short pytest log.
	long := strings.Repeat("The universe is very large. ", 3000)
	p.Pairs = append([]e2e.Pair(nil), p.Pairs...)
	p.Pairs[0].Output = long
	p.Pytest.Output = short
	body, posts = PRBody(p)
	golden.Check(t, "pr-body-overflow-pairs.golden.md", []byte(body))
	if len(body) > comments.MaxBody || len(posts) != 1 || !strings.Contains(body, short) || posts[0].Log != PairsText(p.Pairs) {
		t.Fatalf("pairs overflow: body %d bytes, %d posts", len(body), len(posts))
	}

	// Both too long.
	p.Pytest.Output = bigPytestLog()
	body, posts = PRBody(p)
	golden.Check(t, "pr-body-overflow-all.golden.md", []byte(body))
	if len(body) > comments.MaxBody || len(posts) != 2 {
		t.Fatalf("body %d bytes, %d posts", len(body), len(posts))
	}
	if !strings.Contains(posts[1].Log, "\n"+long+"\n") || !strings.Contains(posts[1].Intro, wantCommand) {
		t.Error("pairs follow-up lacks the output or the command")
	}
}

func TestSummaryCommentsOverflow(t *testing.T) {
	s, _ := inputs(t)
	long := strings.Repeat("Gravity pulls. ", 6000)
	s.E2E.Verdict.Pairs = append([]e2e.Pair(nil), s.E2E.Verdict.Pairs...)
	s.E2E.Verdict.Pairs[1].Output = long
	bodies, err := SummaryComments(s)
	if err != nil {
		t.Fatal(err)
	}
	if len(bodies) < 3 {
		t.Fatalf("got %d bodies", len(bodies))
	}
	for i, b := range bodies {
		if len(b) > comments.MaxBody || !strings.HasPrefix(b, comments.Prefix) {
			t.Errorf("body %d: %d bytes, prefix %q", i, len(b), b[:10])
		}
	}
	if !strings.Contains(bodies[0], "are in the `[AGENT]` comments that follow") {
		t.Error("summary does not point to the follow-ups")
	}
	log, err := comments.Join(bodies[1:])
	if err != nil {
		t.Fatal(err)
	}
	if log != PairsText(s.E2E.Verdict.Pairs) {
		t.Error("follow-ups do not give back the pairs")
	}
}

func TestPhase9Command(t *testing.T) {
	tests := []struct{ gpus, id, cfg, want string }{
		{"0", "Qwen/Qwen3-0.6B", "qwen3-0.6b.yaml", wantCommand},
		{"0", "Qwen/Qwen3-0.6B", "qwen3-0.6b", wantCommand},
		{"0", "Qwen/Qwen3-0.6B", "examples/auto_deploy/model_registry/configs/qwen3-0.6b.yaml", wantCommand},
		{"", "org/m", "m.yaml", "python examples/auto_deploy/build_and_run_ad.py --model org/m --args.yaml-extra examples/auto_deploy/model_registry/configs/m.yaml"},
	}
	for _, tt := range tests {
		if got := Phase9Command(tt.gpus, tt.id, tt.cfg); got != tt.want {
			t.Errorf("Phase9Command(%q, %q, %q) = %q", tt.gpus, tt.id, tt.cfg, got)
		}
	}
}

func TestCode(t *testing.T) {
	for in, want := range map[string]string{"a": "`a`", "a`b": "`` a`b ``", "`x": "`` `x ``", "": "` `", "a\nb": "`a b`"} {
		if got := code(in); got != want {
			t.Errorf("code(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTestRows(t *testing.T) {
	rep, err := pytest.ParseJUnitFile(filepath.Join("..", "pytest", "testdata", "mixed.xml"))
	if err != nil {
		t.Fatal(err)
	}
	rows := TestRows(rep, func(c pytest.Case) string {
		if c.Name == "test_pass" {
			return "arithmetic"
		}
		return ""
	})
	want := []TestRow{
		{Name: "test_pass", Validates: "arithmetic", Outcome: "PASS"},
		{Name: "test_param_pass[bfloat16]", Outcome: "PASS"},
		{Name: "test_param_pass[float16]", Outcome: "PASS"},
		{Name: "test_fail_assert", Outcome: "FAIL"},
		{Name: "test_fail_exception", Outcome: "FAIL"},
		{Name: "test_skip", Outcome: "SKIP"},
		{Name: "test_skipif", Outcome: "SKIP"},
		{Name: "test_error", Outcome: "ERROR"},
		{Name: "test_xfail", Outcome: "XFAIL"},
		{Name: "test_xpass", Outcome: "PASS"},
		{Name: "test_warns", Outcome: "PASS"},
		{Name: "test_mlp", Validates: "MLP block equivalence with HF", Outcome: "PASS"},
		{Name: "test_attention", Validates: "attention block equivalence with HF", Outcome: "FAIL"},
	}
	if diff := cmp.Diff(rows, want); diff != "" {
		t.Errorf("(-got +want):\n%s", diff)
	}
	if TestRows(nil, nil) != nil {
		t.Error("rows from a nil report")
	}
}

func TestEmptyInputs(t *testing.T) {
	got := Summary(SummaryInput{ModelID: "org/m"})
	for _, want := range []string{"_The reviewer has not given a verdict._", "_No end-to-end run was recorded._", "_No prompt→output pairs were produced._", "_No command recorded._", "## 11. AutoDeploy cookbook"} {
		if !strings.Contains(got, want) {
			t.Errorf("empty summary lacks %q", want)
		}
	}
	body, posts := PRBody(PRInput{ModelID: "org/m", ConfigYAML: "m.yaml"})
	if len(posts) != 0 || !strings.Contains(body, "python examples/auto_deploy/build_and_run_ad.py --model org/m --args.yaml-extra examples/auto_deploy/model_registry/configs/m.yaml\n") {
		t.Errorf("empty PR body:\n%s", body)
	}
}
