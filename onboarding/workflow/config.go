package workflow

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nvidia/adbot/onboarding/hub"
)

// EnvKeys are the variables OptionsFromEnv reads, with what each sets.
var EnvKeys = [][2]string{
	{"ADBOT_AGENT_CMD", "the coding agent's program (claude)"},
	{"ADBOT_AGENT_MODEL", "the agent's --model (the CLI's default)"},
	{"ADBOT_AGENT_MAX_TURNS", "the agent's --max-turns per run (200)"},
	{"ADBOT_AGENT_PERMISSION_MODE", "the agent's --permission-mode (acceptEdits)"},
	{"ADBOT_PYTHON", "the Python that runs pytest and the end-to-end script (python3)"},
	{"ADBOT_FIX_ROUNDS", "fixes the agent gets after failed tests or end-to-end runs (3)"},
	{"ADBOT_REVIEW_ROUNDS", "reviews before the job fails (3)"},
	{"ADBOT_REDUCED_LAYERS", "layers of the first, quick end-to-end run (2)"},
	{"ADBOT_BUDGET_CYCLES", "cycles per job before it waits for /onboard proceed (0: unbounded)"},
	{"ADBOT_BUDGET_TURNS", "agent turns per job (0: unbounded)"},
	{"ADBOT_BUDGET_USD", "agent spend per job in USD (0: unbounded)"},
	{"ADBOT_BUDGET_HOURS", "cycle time per job in hours (0: unbounded)"},
	{"ADBOT_GIT_NAME", "the commits' author name (adbot[bot])"},
	{"ADBOT_GIT_EMAIL", "the commits' author email"},
	{"HF_ENDPOINT", "the HuggingFace Hub (https://huggingface.co)"},
	{"HF_TOKEN", "a Hub token for gated or private models"},
	{"HF_HUB_CACHE", "where gather puts the model's code files (the HF default cache)"},
}

// OptionsFromEnv reads the workflow's options from the environment
// (getenv is os.Getenv outside tests). A value that does not parse is an
// error naming the variable.
func OptionsFromEnv(getenv func(string) string) (Options, error) {
	o := Options{
		AgentCmd: getenv("ADBOT_AGENT_CMD"), AgentModel: getenv("ADBOT_AGENT_MODEL"),
		PermissionMode: getenv("ADBOT_AGENT_PERMISSION_MODE"), Python: getenv("ADBOT_PYTHON"),
		GitName: getenv("ADBOT_GIT_NAME"), GitEmail: getenv("ADBOT_GIT_EMAIL"),
		Hub:     &hub.Client{Endpoint: getenv("HF_ENDPOINT"), Token: getenv("HF_TOKEN")},
		HFCache: getenv("HF_HUB_CACHE"),
	}
	ints := []struct {
		key string
		dst *int
	}{
		{"ADBOT_AGENT_MAX_TURNS", &o.MaxTurns}, {"ADBOT_FIX_ROUNDS", &o.FixRounds}, {"ADBOT_REVIEW_ROUNDS", &o.ReviewRounds},
		{"ADBOT_REDUCED_LAYERS", &o.ReducedLayers}, {"ADBOT_BUDGET_CYCLES", &o.Budget.Cycles}, {"ADBOT_BUDGET_TURNS", &o.Budget.Turns},
	}
	for _, f := range ints {
		v := strings.TrimSpace(getenv(f.key))
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return Options{}, fmt.Errorf("%s=%q: want a whole number, 0 or more", f.key, v)
		}
		*f.dst = n
	}
	floats := []struct {
		key string
		dst *float64
	}{{"ADBOT_BUDGET_USD", &o.Budget.CostUSD}}
	var hours float64
	floats = append(floats, struct {
		key string
		dst *float64
	}{"ADBOT_BUDGET_HOURS", &hours})
	for _, f := range floats {
		v := strings.TrimSpace(getenv(f.key))
		if v == "" {
			continue
		}
		x, err := strconv.ParseFloat(v, 64)
		if err != nil || x < 0 || x != x {
			return Options{}, fmt.Errorf("%s=%q: want a number, 0 or more", f.key, v)
		}
		*f.dst = x
	}
	o.Budget.Wall = time.Duration(hours * float64(time.Hour))
	if o.PermissionMode != "" {
		ok := false
		for _, m := range []string{"default", "acceptEdits", "plan", "bypassPermissions", "dontAsk"} {
			ok = ok || m == o.PermissionMode
		}
		if !ok {
			return Options{}, fmt.Errorf("ADBOT_AGENT_PERMISSION_MODE=%q: want default, acceptEdits, plan, bypassPermissions or dontAsk", o.PermissionMode)
		}
	}
	return o, nil
}
