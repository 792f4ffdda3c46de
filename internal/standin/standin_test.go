package standin

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nvidia/adbot/internal/fixtures"
	"github.com/nvidia/adbot/internal/gittest"
	"github.com/nvidia/adbot/internal/golden"
	"github.com/nvidia/adbot/onboarding/agent"
	"github.com/nvidia/adbot/onboarding/e2e"
	"github.com/nvidia/adbot/onboarding/edit/apply"
	"github.com/nvidia/adbot/onboarding/edit/registry"
	"github.com/nvidia/adbot/onboarding/pytest"
	"github.com/nvidia/adbot/onboarding/review"
	"github.com/nvidia/adbot/onboarding/sizing"
	"github.com/nvidia/adbot/onboarding/survey"
)

const (
	modelID   = "Qwen/Qwen3-8B"
	modelFile = survey.CustomDir + "/modeling_qwen3.py"
	testFile  = survey.TestsDirOld + "/test_qwen3_modeling.py"
)

// needPython skips a test that runs the stand-in scripts where python3 is absent.
func needPython(t *testing.T) {
	t.Helper()
	if err := CheckPython(); err != nil {
		t.Skipf("skipping: %v", err)
	}
}

// pytestPython returns a python that has pytest, skipping the test when
// none has. (.ci/run installs Debian's python3-pytest.)
func pytestPython(t *testing.T) string {
	t.Helper()
	for _, py := range []string{"python3", "/usr/bin/python3"} {
		if exec.Command(py, "-m", "pytest", "--version").Run() == nil {
			return py
		}
	}
	t.Skip("skipping: no python3 with pytest (apt-get install python3-pytest)")
	return ""
}

type result struct {
	stdout, stderr string
	code           int
}

// run runs prog in dir with the environment plus env; a state folder of
// the test's own keeps runs of different tests apart.
func run(t *testing.T, dir string, env []string, prog string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run %s: %v", prog, err)
	}
	return result{out.String(), errb.String(), code}
}

// installed writes the stand-ins to a temporary folder.
func installed(t *testing.T) (agentCmd, e2eCmd string) {
	t.Helper()
	needPython(t)
	a, e, err := Install(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return a, e
}

func taskPrompt(kind, extra string) string {
	return "adbot-task: " + kind + "\nOnboard the model below.\nModel: " + modelID + "\nModel file: " + modelFile + "\nTest file: " + testFile + "\n" + extra
}

// agentArgs is the argument vector the workflow passes.
func agentArgs(prompt, resume string) []string {
	return agent.Args(agent.Options{Prompt: prompt, MaxTurns: 40, Model: "opus", PermissionMode: "acceptEdits",
		Resume: resume, AllowedTools: []string{"Read", "Edit", "Bash(git:*)"}})
}

func readRun(t *testing.T, r result) *agent.Run {
	t.Helper()
	ar, err := agent.Read(strings.NewReader(r.stdout), nil)
	if err != nil {
		t.Fatalf("agent stream: %v\nstdout:\n%s\nstderr:\n%s", err, r.stdout, r.stderr)
	}
	if len(ar.Skipped) > 0 {
		t.Errorf("stream lines %v are not JSON objects", ar.Skipped)
	}
	return ar
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestInstall(t *testing.T) {
	t.Parallel()
	a, e := installed(t)
	for _, p := range []string{a, e} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o755 {
			t.Errorf("%s: mode %v, want 0755", p, st.Mode().Perm())
		}
		want, _ := Script(filepath.Base(p))
		if got := readFile(t, p); got != string(want) {
			t.Errorf("%s differs from the embedded script", p)
		}
		if out, err := exec.Command("python3", "-m", "py_compile", p).CombinedOutput(); err != nil {
			t.Errorf("%s does not compile: %v\n%s", p, err, out)
		}
	}
}

// TestAgentWorkflow drives one model through the workflow's agent tasks in
// order, as the runner would, and reads each answer with the parsers the
// runner uses.
func TestAgentWorkflow(t *testing.T) {
	t.Parallel()
	agentCmd, _ := installed(t)
	dir := t.TempDir()
	env := []string{"ADBOT_STANDIN_STATE=" + t.TempDir(), "ADBOT_STANDIN_TESTS=fail-once", "ADBOT_STANDIN_REVIEW=fail-once"}
	session := ""
	steps := []struct {
		kind   string
		extra  string
		review review.Status // the verdict a review step gives
		// changed is the file the step must change (and only it), "" for none.
		changed  string
		wantText string
	}{
		{kind: "model", changed: "both", wantText: "Wrote " + modelFile},
		{kind: "fix-tests", extra: "FAILED " + testFile + "::test_rms_norm_unit_scale - AssertionError\n", changed: testFile, wantText: "Fixed the failing test"},
		{kind: "review", review: review.Fail},
		{kind: "fix-review", extra: "Failed items requiring fixes:\n1. G2 — no decoder-layer test\n", changed: modelFile, wantText: "Addressed fix-review"},
		{kind: "review", review: review.Pass},
		{kind: "fix-e2e", extra: "Traceback (most recent call last):\nRuntimeError: boom\n", changed: modelFile, wantText: "Addressed fix-e2e"},
		{kind: "feedback", extra: "@reviewer: please rename the norm\n", changed: modelFile, wantText: "Addressed feedback"},
	}
	for i, s := range steps {
		t.Run(s.kind, func(t *testing.T) {
			before := map[string]string{}
			for _, f := range []string{modelFile, testFile} {
				b, _ := os.ReadFile(filepath.Join(dir, f))
				before[f] = string(b)
			}
			r := run(t, dir, env, agentCmd, agentArgs(taskPrompt(s.kind, s.extra), session)...)
			if r.code != 0 {
				t.Fatalf("exit %d\nstderr:\n%s\nstdout:\n%s", r.code, r.stderr, r.stdout)
			}
			ar := readRun(t, r)
			if err := ar.Err(); err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				session = ar.SessionID
				if len(session) != 36 {
					t.Errorf("session id %q is not a uuid", session)
				}
			} else if ar.SessionID != session || ar.Result.SessionID != session {
				t.Errorf("session %q / result %q after --resume=%s", ar.SessionID, ar.Result.SessionID, session)
			}
			if ar.CWD != dir {
				t.Errorf("init cwd %q, want %q", ar.CWD, dir)
			}
			if c := ar.Result.TotalCostUSD; c <= 0 || c > 0.1 {
				t.Errorf("total_cost_usd %v, want a small positive cost", c)
			}
			if ar.Result.NumTurns < 1 {
				t.Errorf("num_turns %d", ar.Result.NumTurns)
			}
			for _, f := range []string{modelFile, testFile} {
				b, _ := os.ReadFile(filepath.Join(dir, f))
				want := s.changed == f || s.changed == "both"
				if got := string(b) != before[f]; got != want {
					t.Errorf("%s changed: %v, want %v", f, got, want)
				}
			}
			if s.review != "" {
				rv, err := review.Parse(ar.Result.Text)
				if err != nil {
					t.Fatal(err)
				}
				if rv.Header != s.review || rv.OK() != (s.review == review.Pass) {
					t.Errorf("verdict %s (ok %v), want %s", rv.Header, rv.OK(), s.review)
				}
				if len(rv.Problems) > 0 {
					t.Errorf("verdict problems: %q\n%s", rv.Problems, ar.Result.Text)
				}
				if s.review == review.Fail {
					if len(rv.FailedItems()) != 1 || len(rv.Fixes) != 1 {
						t.Errorf("failed items %v, fixes %q: want one of each", rv.FailedItems(), rv.Fixes)
					}
					golden.Check(t, "review-fail.golden", []byte(ar.Result.Text))
				}
				for _, tu := range ar.ToolUses {
					if tu.Name != "Read" {
						t.Errorf("a review used %s", tu.Name)
					}
				}
				return
			}
			if !strings.Contains(ar.Result.Text, s.wantText) {
				t.Errorf("result %q, want it to contain %q", ar.Result.Text, s.wantText)
			}
			var names []string
			for _, tu := range ar.ToolUses {
				names = append(names, tu.Name)
				if tu.Result == "" || tu.IsError {
					t.Errorf("tool %s: result %q, error %v", tu.Name, tu.Result, tu.IsError)
				}
			}
			if len(names) == 0 {
				t.Error("no tool use in the stream")
			}
		})
	}
	src := readFile(t, filepath.Join(dir, modelFile))
	for _, want := range []string{
		`AutoModelForCausalLMFactory.register_custom_model_cls("Qwen3Config", Qwen3ForCausalLM)`,
		"assert position_ids is not None",
		"# adbot-standin: addressed fix-review\n",
		"# adbot-standin: addressed feedback\n",
	} {
		if !strings.Contains(src, want) {
			t.Errorf("model file lacks %q", want)
		}
	}
	if out, err := exec.Command("python3", "-c", "import ast,sys; ast.parse(open(sys.argv[1]).read())", filepath.Join(dir, modelFile)).CombinedOutput(); err != nil {
		t.Errorf("model file does not parse: %v\n%s", err, out)
	}
}

func TestAgentRefuses(t *testing.T) {
	t.Parallel()
	agentCmd, _ := installed(t)
	env := []string{"ADBOT_STANDIN_STATE=" + t.TempDir()}
	tests := []struct {
		name string
		args []string
		// stream is true when a result line is expected (with is_error set).
		stream   bool
		wantText string
	}{
		{"no --verbose", []string{"-p", "--output-format", "stream-json", "--", taskPrompt("model", "")}, false, "requires --verbose"},
		{"unknown task", agentArgs(taskPrompt("deploy", ""), ""), true, "unknown task"},
		{"no task line", agentArgs("Model: a/b\nModel file: x.py\nTest file: t.py\n", ""), true, "unknown task"},
		{"no model file", agentArgs("adbot-task: model\nModel: a/b\nTest file: t.py\n", ""), true, "lacks Model file"},
		{"fix without a model file", agentArgs(taskPrompt("feedback", ""), ""), true, "does not exist"},
		{"review without files", agentArgs(taskPrompt("review", ""), ""), true, "cannot review"},
		{"two prompts", []string{"-p", "--output-format", "stream-json", "--verbose", "--", "a", "b"}, false, "exactly one prompt"},
		{"unknown flag", []string{"-p", "--output-format", "stream-json", "--verbose", "--frobnicate", "--", "x"}, false, "unknown option"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, t.TempDir(), env, agentCmd, tt.args...)
			if r.code != 1 {
				t.Errorf("exit %d, want 1", r.code)
			}
			if !tt.stream {
				if !strings.Contains(r.stderr, tt.wantText) {
					t.Errorf("stderr %q, want %q", r.stderr, tt.wantText)
				}
				return
			}
			ar := readRun(t, r)
			if ar.OK() || ar.Result == nil || !ar.Result.IsError {
				t.Fatalf("want an error result, got %+v", ar.Result)
			}
			if !strings.Contains(ar.Result.Text, tt.wantText) {
				t.Errorf("result %q, want %q", ar.Result.Text, tt.wantText)
			}
		})
	}
}

// TestAgentOldForm: "-p <prompt>" is read as well as "-p ... -- <prompt>".
func TestAgentOldForm(t *testing.T) {
	t.Parallel()
	agentCmd, _ := installed(t)
	dir := t.TempDir()
	r := run(t, dir, []string{"ADBOT_STANDIN_STATE=" + t.TempDir()}, agentCmd,
		"-p", taskPrompt("model", ""), "--output-format", "stream-json", "--verbose", "--max-turns", "3", "--allowedTools", "Write", "Edit", "--permission-mode", "acceptEdits")
	ar := readRun(t, r)
	if err := ar.Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, testFile)); err != nil {
		t.Error(err)
	}
}

func TestReviewModes(t *testing.T) {
	t.Parallel()
	agentCmd, _ := installed(t)
	tests := []struct {
		mode string
		want []review.Status
	}{
		{"fail-once", []review.Status{review.Fail, review.Pass, review.Pass}},
		{"", []review.Status{review.Fail, review.Pass}},
		{"pass", []review.Status{review.Pass, review.Pass}},
		{"fail", []review.Status{review.Fail, review.Fail}},
	}
	for _, tt := range tests {
		t.Run("mode="+tt.mode, func(t *testing.T) {
			dir := t.TempDir()
			env := []string{"ADBOT_STANDIN_STATE=" + t.TempDir(), "ADBOT_STANDIN_REVIEW=" + tt.mode}
			if r := run(t, dir, env, agentCmd, agentArgs(taskPrompt("model", ""), "")...); r.code != 0 {
				t.Fatalf("model: exit %d: %s", r.code, r.stderr)
			}
			var got []review.Status
			for range tt.want {
				ar := readRun(t, run(t, dir, env, agentCmd, agentArgs(taskPrompt("review", ""), "")...))
				rv, err := review.Parse(ar.Result.Text)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, rv.Header)
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("verdicts (-got +want):\n%s", diff)
			}
		})
	}
}

func TestE2E(t *testing.T) {
	t.Parallel()
	_, e2eCmd := installed(t)
	type check func(t *testing.T, r result, v e2e.Verdict, pairs []e2e.Pair)
	tests := []struct {
		name    string
		env     []string
		args    []string
		results bool // --benchmark.store-results true
		code    int
		ok      bool
		check   check
	}{
		{
			name: "ok", env: []string{"CUDA_VISIBLE_DEVICES=3,4"}, results: true, ok: true,
			args: []string{"--args.yaml-extra", "cfg.yaml", "--args.yaml-extra", "more.yaml", "--args.model-kwargs.num-hidden-layers=2", "--some.unknown-flag", "x"},
			check: func(t *testing.T, r result, v e2e.Verdict, pairs []e2e.Pair) {
				if len(pairs) != e2e.DefaultBatchSize {
					t.Errorf("%d pairs, want %d", len(pairs), e2e.DefaultBatchSize)
				}
				distinct, multi := map[string]bool{}, 0
				for i, p := range pairs {
					if p.Prompt != e2e.DefaultPrompts[i] {
						t.Errorf("prompt %d %q, want %q", i, p.Prompt, e2e.DefaultPrompts[i])
					}
					distinct[p.Output] = true
					if strings.Contains(p.Output, "\n") {
						multi++
					}
					if len(distinctWords(p.Output)) < 4 {
						t.Errorf("output %d is not varied text: %q", i, p.Output)
					}
				}
				if len(distinct) != len(pairs) || multi == 0 {
					t.Errorf("%d distinct outputs of %d, %d multi-line", len(distinct), len(pairs), multi)
				}
				for _, want := range []string{"[I] CUDA_VISIBLE_DEVICES=3,4", "num_hidden_layers=2", "cfg.yaml"} {
					if !strings.Contains(r.stdout, want) {
						t.Errorf("log lacks %q", want)
					}
				}
			},
		},
		{name: "two-token layers, batch 3", args: []string{"--args.model-kwargs.num-hidden-layers", "4", "--prompt.batch-size", "3", "--use-registry"}, ok: true,
			check: func(t *testing.T, r result, v e2e.Verdict, pairs []e2e.Pair) {
				if len(pairs) != 3 || !strings.Contains(r.stdout, "num_hidden_layers=4") {
					t.Errorf("%d pairs; log:\n%s", len(pairs), r.stdout)
				}
			}},
		{name: "layers from the yaml", args: []string{"--args.yaml-extra", "layers.yaml"}, results: true, ok: true,
			check: func(t *testing.T, r result, v e2e.Verdict, pairs []e2e.Pair) {
				if !strings.Contains(r.stdout, "num_hidden_layers=5") {
					t.Errorf("log lacks the yaml's layers:\n%s", r.stdout)
				}
			}},
		// The gate refuses one token repeated (e2e.Degenerate).
		{name: "degenerate", env: []string{"ADBOT_STANDIN_E2E=degenerate"}, results: true, ok: false,
			check: func(t *testing.T, r result, v e2e.Verdict, pairs []e2e.Pair) {
				if !strings.Contains(v.Reason, "degenerate") {
					t.Errorf("verdict reason %q does not say degenerate", v.Reason)
				}
				for _, p := range pairs {
					if w := distinctWords(p.Output); len(w) != 1 || len(strings.Fields(p.Output)) < 8 {
						t.Errorf("output %d %q is not one token repeated", p.Index, p.Output)
					}
				}
			}},
		{name: "slow", env: []string{"ADBOT_STANDIN_E2E=slow=0.05"}, ok: true},
		{name: "crash", env: []string{"ADBOT_STANDIN_E2E=crash"}, results: true, code: 1,
			check: func(t *testing.T, r result, v e2e.Verdict, pairs []e2e.Pair) {
				if !strings.Contains(r.stderr, "Traceback (most recent call last):") || !strings.Contains(r.stderr, "RuntimeError: CUDA error") {
					t.Errorf("stderr lacks a traceback:\n%s", r.stderr)
				}
			}},
		{name: "missing yaml", args: []string{"--args.yaml-extra", "nope.yaml"}, code: 1,
			check: func(t *testing.T, r result, v e2e.Verdict, pairs []e2e.Pair) {
				if !strings.Contains(r.stderr, "FileNotFoundError") {
					t.Errorf("stderr:\n%s", r.stderr)
				}
			}},
		{name: "bad knob", env: []string{"ADBOT_STANDIN_E2E=explode"}, code: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "cfg.yaml"), []byte("max_batch_size: 8\n"), 0o644)
			os.WriteFile(filepath.Join(dir, "more.yaml"), []byte("tensor_parallel_size: 2\n"), 0o644)
			os.WriteFile(filepath.Join(dir, "layers.yaml"), []byte("model_kwargs:\n  num_hidden_layers: 5\n"), 0o644)
			args := append([]string{"--model", modelID}, tt.args...)
			resPath := filepath.Join(dir, "out", "results.json")
			os.MkdirAll(filepath.Dir(resPath), 0o755)
			if tt.results {
				args = append(args, "--benchmark.store-results", "true", "--benchmark.results-path", resPath)
			}
			env := append([]string{"ADBOT_STANDIN_STATE=" + t.TempDir(), "CUDA_VISIBLE_DEVICES="}, tt.env...)
			r := run(t, dir, env, e2eCmd, args...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\nstderr:\n%s", r.code, tt.code, r.stderr)
			}
			v, pairs := judge(t, r, resPath, tt.results && r.code == 0)
			if v.OK != tt.ok {
				t.Errorf("verdict %v (%s), want %v", v.OK, v.Reason, tt.ok)
			}
			if tt.check != nil {
				tt.check(t, r, v, pairs)
			}
		})
	}
}

// judge parses a run as the workflow does: the log (stdout and stderr), the
// results JSON when there is one, reconciled and judged.
func judge(t *testing.T, r result, resPath string, wantResults bool) (e2e.Verdict, []e2e.Pair) {
	t.Helper()
	pairs, err := e2e.ParseLog(strings.NewReader(r.stdout + r.stderr))
	if err != nil {
		t.Fatalf("parse log: %v", err)
	}
	run := e2e.Run{ExitCode: r.code, Log: pairs}
	if b, err := os.ReadFile(resPath); err == nil {
		if run.Results, err = e2e.ParseResults(b); err != nil {
			t.Fatal(err)
		}
		run.Expected = len(run.Results.Pairs)
	} else if wantResults {
		t.Fatalf("no results JSON: %v", err)
	}
	v := e2e.Judge(run)
	if len(v.Mismatches) > 0 {
		t.Errorf("log and results disagree: %v", v.Mismatches)
	}
	return v, pairs
}

func distinctWords(s string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(s) {
		m[w] = true
	}
	return m
}

func TestE2ECrashOnce(t *testing.T) {
	t.Parallel()
	_, e2eCmd := installed(t)
	dir := t.TempDir()
	env := []string{"ADBOT_STANDIN_STATE=" + t.TempDir(), "ADBOT_STANDIN_E2E=crash-once"}
	var got []int
	for range 3 {
		got = append(got, run(t, dir, env, e2eCmd, "--model", modelID).code)
	}
	// Another model in the same folder crashes once too.
	got = append(got, run(t, dir, env, e2eCmd, "--model", "Qwen/Qwen3-0.6B").code)
	if diff := cmp.Diff(got, []int{1, 0, 0, 1}); diff != "" {
		t.Errorf("exit codes (-got +want):\n%s", diff)
	}
}

func TestBuildRemote(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		fixtures func(t *testing.T) string
	}{
		{"skeleton", func(*testing.T) string { return "" }},
		{"fixtures", func(t *testing.T) string { return filepath.Dir(fixtures.Path(t, "trtllm")) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := tt.fixtures(t)
			dir := t.TempDir()
			bare, err := BuildRemote(context.Background(), dir, root)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := BuildRemote(context.Background(), dir, root); err == nil || !strings.Contains(err.Error(), "already exists") {
				t.Errorf("second build: %v, want an already-exists error", err)
			}
			clone := filepath.Join(t.TempDir(), "clone")
			gittest.Git(t, dir, "clone", "--quiet", bare, clone)
			if got := gittest.Git(t, clone, "log", "--format=%an|%s", Branch); got != Author+"|TensorRT-LLM demo checkout for adbot" {
				t.Errorf("log %q", got)
			}
			if got := gittest.Git(t, clone, "ls-files", "-s", E2EPath); !strings.HasPrefix(got, "100755 ") {
				t.Errorf("%s: %q, want mode 100755", E2EPath, got)
			}
			for _, p := range []string{".claude/skills/ad-model-onboard/SKILL.md", ".claude/agents/ad-onboard-reviewer.md",
				"tests/unittest/_torch/auto_deploy/_utils_test/_model_test_utils.py"} {
				if _, err := os.Stat(filepath.Join(clone, p)); err != nil {
					t.Error(err)
				}
			}
			co, err := survey.Inspect(clone)
			if err != nil {
				t.Fatal(err)
			}
			got := []string{co.Registry, co.TestsDir, co.Configs}
			if diff := cmp.Diff(got, []string{registry.LegacyPath, survey.TestsDirOld, registry.LegacyConfigs}); diff != "" {
				t.Errorf("survey (-got +want):\n%s", diff)
			}
			changes, err := apply.Apply(clone, qwen3(t))
			if err != nil {
				t.Fatal(err)
			}
			changed := map[string]bool{}
			for _, ch := range changes {
				changed[ch.Path] = ch.Changed
			}
			for _, p := range []string{"examples/auto_deploy/model_registry/configs/qwen3-8b.yaml", registry.LegacyPath,
				"examples/auto_deploy/cookbooks/qwen3_8b_trtllm_cookbook.ipynb", survey.CustomDir + "/__init__.py"} {
				if !changed[p] {
					t.Errorf("apply left %s unchanged: %+v", p, changes)
				}
			}
		})
	}
}

func qwen3(t *testing.T) apply.Model {
	t.Helper()
	c, err := sizing.ParseConfig("config.json", fixtures.Read(t, "hf", "Qwen__Qwen3-8B", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	plan := sizing.Make(sizing.Input{ModelID: modelID, Config: c}, nil)
	return apply.Model{
		ID: modelID, Display: "Qwen3-8B", Architecture: "Qwen3ForCausalLM", WorldSize: plan.WorldSize,
		Module: "modeling_qwen3", Classes: []string{"Qwen3ForCausalLM"},
		Date: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
	}
}

// TestModelThenPytest writes the model and its tests into a clone of the
// demo remote and runs them with the real pytest: with fail-once the first
// run fails one test, fix-tests mends it, the second run passes.
func TestModelThenPytest(t *testing.T) {
	t.Parallel()
	agentCmd, _ := installed(t)
	py := pytestPython(t)
	dir := t.TempDir()
	bare, err := BuildRemote(context.Background(), dir, "")
	if err != nil {
		t.Fatal(err)
	}
	clone := filepath.Join(t.TempDir(), "clone")
	gittest.Git(t, dir, "clone", "--quiet", bare, clone)
	env := []string{"ADBOT_STANDIN_STATE=" + t.TempDir(), "ADBOT_STANDIN_TESTS=fail-once"}
	if r := run(t, clone, env, agentCmd, agentArgs(taskPrompt("model", ""), "")...); r.code != 0 {
		t.Fatalf("model: exit %d: %s", r.code, r.stderr)
	}
	type outcome struct {
		Code     int
		Passed   int
		Failed   int
		FailedID []string
	}
	pytestRun := func(t *testing.T) (outcome, string) {
		xml := filepath.Join(t.TempDir(), "junit.xml")
		r := run(t, clone, []string{"PYTHONDONTWRITEBYTECODE=1"}, py, "-m", "pytest", "-v", "-rfE", "-p", "no:cacheprovider", "--junitxml="+xml, testFile)
		rep, err := pytest.ParseJUnitFile(xml)
		if err != nil {
			t.Fatalf("%v\n%s", err, r.stdout)
		}
		con, err := pytest.ParseConsole(strings.NewReader(r.stdout))
		if err != nil {
			t.Fatal(err)
		}
		o := outcome{Code: r.code, Passed: rep.Count(pytest.Passed), Failed: rep.Count(pytest.Failed)}
		for _, c := range rep.Failing() {
			o.FailedID = append(o.FailedID, c.Name)
		}
		if con.OK() != rep.OK() || con.Counts["passed"] != o.Passed || con.Counts["failed"] != o.Failed {
			t.Errorf("console %+v disagrees with JUnit %+v", con.Counts, o)
		}
		return o, r.stdout
	}
	first, log := pytestRun(t)
	if diff := cmp.Diff(first, outcome{Code: 1, Passed: 3, Failed: 1, FailedID: []string{"test_rms_norm_unit_scale"}}); diff != "" {
		t.Fatalf("first pytest run (-got +want):\n%s\n%s", diff, log)
	}
	tail := log[max(0, len(log)-2000):]
	if r := run(t, clone, env, agentCmd, agentArgs(taskPrompt("fix-tests", "Pytest failures:\n"+tail), "")...); r.code != 0 {
		t.Fatalf("fix-tests: exit %d: %s", r.code, r.stderr)
	}
	second, log := pytestRun(t)
	if diff := cmp.Diff(second, outcome{Code: 0, Passed: 4}); diff != "" {
		t.Fatalf("second pytest run (-got +want):\n%s\n%s", diff, log)
	}
	// Writing the model again gives passing tests: fail-once fails only the
	// first test file written for a model file.
	if r := run(t, clone, env, agentCmd, agentArgs(taskPrompt("model", ""), "")...); r.code != 0 {
		t.Fatalf("model again: exit %d", r.code)
	}
	third, log := pytestRun(t)
	if diff := cmp.Diff(third, outcome{Code: 0, Passed: 4}); diff != "" {
		t.Fatalf("pytest after rewriting (-got +want):\n%s\n%s", diff, log)
	}
}
