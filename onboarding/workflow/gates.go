package workflow

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/nvidia/adbot/onboarding/e2e"
	"github.com/nvidia/adbot/onboarding/pytest"
	"github.com/nvidia/adbot/onboarding/report"
	"github.com/nvidia/adbot/onboarding/review"
)

// testGate runs the model's unit tests; on failure the agent resumes its
// session with the failures, a bounded number of times.
func (c *cycle) testGate(ctx context.Context) error {
	for round := 0; ; round++ {
		ok, failures, err := c.pytest(ctx)
		if err != nil {
			return err
		}
		if ok {
			return c.save(ctx)
		}
		if round >= c.w.opt.FixRounds {
			return fmt.Errorf("unit tests still fail after %d fixes: %s", round, c.st.Pytest.Summary)
		}
		if _, err := c.agent(ctx, fmt.Sprintf("fix-tests-%d", round+1), fixTestsPrompt(c.job, c.st, failures), false); err != nil {
			return err
		}
		if _, err := c.commit(ctx, "[AutoDeploy] Fix the unit tests of "+c.job.ModelID); err != nil {
			return err
		}
	}
}

// pytest runs the test file once, keeping the JUnit XML and the whole
// console log. It reports whether every test passed and, if not, the
// failures for the agent.
func (c *cycle) pytest(ctx context.Context) (bool, string, error) {
	py := c.w.opt.Python
	if _, err := c.h.Exec(ctx, Cmd{Name: "pytest-version", Args: []string{py, "-m", "pytest", "--version"}, Class: ClassTest}); err != nil {
		return false, "", fmt.Errorf("unit tests: %w: pytest does not run with %s (install it: apt-get install python3-pytest, or pip install pytest): %v", ErrToolMissing, py, err)
	}
	c.st.Pytest.Runs++
	n := c.st.Pytest.Runs
	junit := filepath.Join(c.h.ScratchDir(), fmt.Sprintf("junit-%d-%d.xml", c.job.Cycle, n))
	args := []string{py, "-m", "pytest", "-v", "-p", "no:cacheprovider", "--junitxml=" + junit, c.st.TestFile}
	res, runErr := c.h.Exec(ctx, Cmd{Name: fmt.Sprintf("pytest-%d", n), Args: args, Class: ClassTest, Timeout: c.w.opt.TestTimeout,
		Env: []string{"PYTHONDONTWRITEBYTECODE=1"}})
	c.took(ClassTest, res.Duration)
	if ctx.Err() != nil {
		return false, "", ctx.Err()
	}
	if res.Stdout == "" {
		return false, "", fmt.Errorf("unit tests: %w", runErr)
	}
	out := readAll(res.Stdout) + readAll(res.Stderr)
	if err := c.h.SaveLog(ctx, fmt.Sprintf("cycle-%d/pytest-%d.log", c.job.Cycle, n), res.Stdout); err != nil {
		return false, "", err
	}
	if _, err := os.Stat(junit); err == nil {
		if err := c.h.SaveLog(ctx, fmt.Sprintf("cycle-%d/pytest-%d.xml", c.job.Cycle, n), junit); err != nil {
			return false, "", err
		}
	}
	head, err := c.head(ctx)
	if err != nil {
		return false, "", err
	}
	c.st.Pytest.Command = report.PytestCommand(c.st.TestFile)
	c.st.Pytest.Output = out
	c.st.Pytest.Commit = head
	con, _ := pytest.ParseConsole(strings.NewReader(out))
	if con != nil {
		c.st.Pytest.Summary = con.SummaryLine
	}
	ok := res.ExitCode == 0
	c.st.Pytest.Tests = nil
	if rep, err := pytest.ParseJUnitFile(junit); err == nil {
		ok = ok && rep.Tests > 0 && rep.Failures == 0 && rep.Errors == 0
		c.st.Pytest.Tests = report.TestRows(rep, nil)
	} else {
		ok = false
	}
	if c.st.Pytest.Summary == "" {
		c.st.Pytest.Summary = "exit status " + strconv.Itoa(res.ExitCode)
	}
	c.st.Pytest.Passed = ok
	if ok {
		return true, "", nil
	}
	return false, tail(out, 12000), nil
}

// reviewLoop is Phase 7: a fresh agent reviews; a FAIL goes back to the
// author's session to fix, the tests run again, and a fresh review follows,
// until PASS or the rounds run out.
func (c *cycle) reviewLoop(ctx context.Context) error {
	for round := 1; ; round++ {
		text, err := c.agent(ctx, fmt.Sprintf("review-%d", round), reviewPrompt(c.job, c.st), true)
		if err != nil {
			return err
		}
		c.st.Review.Rounds = round
		c.st.Review.Verdict = text
		rv, perr := review.Parse(text)
		if perr != nil {
			c.st.Review.Passed = false
		} else {
			c.st.Review.Passed = rv.OK()
		}
		if err := c.save(ctx); err != nil {
			return err
		}
		if c.st.Review.Passed {
			return nil
		}
		if round >= c.w.opt.ReviewRounds {
			why := "the reviewer's answer had no verdict"
			if rv != nil {
				why = fmt.Sprintf("%d item(s) still fail", len(rv.FailedItems()))
			}
			return fmt.Errorf("review: no PASS after %d rounds (%s)", round, why)
		}
		if _, err := c.agent(ctx, fmt.Sprintf("fix-review-%d", round), fixReviewPrompt(c.job, c.st, text), false); err != nil {
			return err
		}
		if _, err := c.commit(ctx, "[AutoDeploy] Address the review of "+c.job.ModelID); err != nil {
			return err
		}
		if err := c.testGate(ctx); err != nil {
			return err
		}
	}
}

// endToEnd is Phase 9: the run script on the cycle's GPUs with reduced
// layers first, then the whole model; on failure the agent gets the log and
// config, a bounded number of times. The pairs come from the results JSON,
// checked against the log.
func (c *cycle) endToEnd(ctx context.Context) error {
	return c.runUntilPass(ctx, c.w.opt.ReducedLayers, 0)
}

// runUntilPass runs the end-to-end script with each layer count in turn (0:
// all), each until it passes or the agent's fixes run out.
func (c *cycle) runUntilPass(ctx context.Context, layerCounts ...int) error {
	for _, layers := range layerCounts {
		for round := 0; ; round++ {
			v, err := c.runE2E(ctx, layers)
			if err != nil {
				return err
			}
			if v.OK {
				break
			}
			if round >= c.w.opt.FixRounds {
				return fmt.Errorf("end-to-end run (%s) still fails after %d fixes: %s", layerName(layers), round, v.Reason)
			}
			if _, err := c.agent(ctx, fmt.Sprintf("fix-e2e-%d", c.st.E2E.Runs), fixE2EPrompt(c.job, c.st, v.Reason), false); err != nil {
				return err
			}
			if _, err := c.commit(ctx, "[AutoDeploy] Fix the end-to-end run of "+c.job.ModelID); err != nil {
				return err
			}
		}
	}
	return nil
}

func layerName(layers int) string {
	if layers > 0 {
		return fmt.Sprintf("%d layers", layers)
	}
	return "all layers"
}

// runE2E runs build_and_run_ad.py once and judges it.
func (c *cycle) runE2E(ctx context.Context, layers int) (e2e.Verdict, error) {
	wt := c.h.Worktree().Dir
	if _, err := os.Stat(filepath.Join(wt, report.RunScript)); err != nil {
		return e2e.Verdict{}, fmt.Errorf("end-to-end: the checkout has no %s", report.RunScript)
	}
	c.st.E2E.Runs++
	n := c.st.E2E.Runs
	results := filepath.Join(c.h.ScratchDir(), fmt.Sprintf("results-%d-%d.json", c.job.Cycle, n))
	cfg := report.ConfigPath(c.st.ConfigName)
	args := []string{c.w.opt.Python, report.RunScript, "--model", c.job.ModelID, "--args.yaml-extra", cfg}
	if layers > 0 {
		args = append(args, "--args.model-kwargs.num-hidden-layers="+strconv.Itoa(layers))
	}
	args = append(args, "--benchmark.store-results", "true", "--benchmark.results-path", results)
	res, runErr := c.h.Exec(ctx, Cmd{Name: fmt.Sprintf("e2e-%d", n), Args: args, Class: ClassE2E, Timeout: c.w.opt.E2ETimeout})
	c.took(ClassE2E, res.Duration)
	if ctx.Err() != nil {
		return e2e.Verdict{}, ctx.Err()
	}
	if res.Stdout == "" {
		return e2e.Verdict{}, fmt.Errorf("end-to-end: %w", runErr)
	}
	for name, path := range map[string]string{"stdout": res.Stdout, "stderr": res.Stderr} {
		if err := c.h.SaveLog(ctx, fmt.Sprintf("cycle-%d/e2e-%d.%s", c.job.Cycle, n, name), path); err != nil {
			return e2e.Verdict{}, err
		}
	}
	// Older versions log to stderr, newer to stdout.
	run := e2e.Run{ExitCode: res.ExitCode, Expected: e2e.DefaultBatchSize}
	logText := readAll(res.Stdout)
	for _, f := range []string{res.Stdout, res.Stderr} {
		pairs, err := e2e.ParseLogFile(f)
		if err == nil && len(pairs) > len(run.Log) {
			run.Log = pairs
		}
	}
	if len(run.Log) == 0 {
		logText += readAll(res.Stderr)
	}
	if r, err := e2e.ParseResultsFile(results); err == nil {
		run.Results = r
	} else if !errors.Is(err, os.ErrNotExist) {
		run.Results = nil
	}
	if res.TimedOut {
		run.ExitCode = -1
	}
	v := e2e.Judge(run)
	if res.TimedOut {
		v.Reason = "time limit reached; " + v.Reason
	}
	head, err := c.head(ctx)
	if err != nil {
		return v, err
	}
	gpus := make([]string, 0, len(c.h.GPUs()))
	for _, g := range c.h.GPUs() {
		gpus = append(gpus, strconv.Itoa(g.Index))
	}
	cfgYAML, _ := os.ReadFile(filepath.Join(wt, cfg))
	c.st.E2E = E2ERun{Command: report.Phase9Command(strings.Join(gpus, ","), c.job.ModelID, c.st.ConfigName), GPUs: strings.Join(gpus, ","),
		ConfigYAML: string(cfgYAML), Reason: v.Reason + " (" + layerName(layers) + ")", OK: v.OK, Pairs: v.Pairs,
		Log: logText, Runs: n, Commit: head}
	if layers > 0 {
		c.st.E2E.Command += " --args.model-kwargs.num-hidden-layers=" + strconv.Itoa(layers)
	}
	return v, c.save(ctx)
}

func readAll(path string) string {
	if path == "" {
		return ""
	}
	b, _ := os.ReadFile(path)
	return string(b)
}

// tail keeps the last n bytes of s, from a line start.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return "…\n" + s
}
