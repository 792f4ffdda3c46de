// Command adbot is a GitHub App that onboards HuggingFace models into
// TensorRT-LLM's AutoDeploy backend. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/nvidia/adbot/internal/version"
	"github.com/nvidia/adbot/onboarding/preflight"
	"github.com/nvidia/adbot/onboarding/workflow"
	"github.com/nvidia/adbot/runners"
	"github.com/nvidia/adbot/server"
)

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string) error
}

var commands = []command{
	{"setup", "create the GitHub App from deploy/app-manifest.json and write its id, key and webhook secret", server.SetupCommand},
	{"serve", "run the webhook server (and the embedded NATS server unless NATS_URL is set)", server.ServeCommand},
	{"dev", "run server, embedded NATS and a local runner in one process; without App credentials, print GitHub calls instead of sending them",
		server.DevCommand(onboardingWorkflow)},
	{"runner", "run a GPU runner that takes cycles from NATS", runners.Command(onboardingWorkflow)},
	{"send", "sign a webhook payload with the webhook secret and post it to a running server", server.SendCommand},
	{"status", "show jobs, queues and runners from the bus (--json for one object)", server.StatusCommand},
	{"preflight", "size a model and check whether it fits this machine's GPUs", preflight.Command},
	{"version", "print the module version and the commit this binary was built from", version.Command},
}

// onboardingWorkflow is the onboarding workflow, configured from the
// environment, for the runner: the one place where the two meet.
func onboardingWorkflow() (runners.Workflow, error) {
	o, err := workflow.OptionsFromEnv(os.Getenv)
	if err != nil {
		return nil, err
	}
	rc, err := runners.ConfigFromEnv()
	if err != nil {
		return nil, err
	}
	o.AllowedTools, o.DisallowedTools = rc.AgentTools()
	return runners.Onboarding(workflow.New(o)), nil
}

func usage() {
	fmt.Fprintf(os.Stderr, "adbot %s: onboard HuggingFace models into TensorRT-LLM AutoDeploy\n\nUsage: adbot <command> [flags] [args]\n\nCommands:\n", version.String())
	for _, c := range commands {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(os.Stderr, "\nRun 'adbot <command> --help' for a command's flags.\n")
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage()
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for _, c := range commands {
		if c.name != os.Args[1] {
			continue
		}
		err := c.run(ctx, os.Args[2:])
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "adbot %s: %v\n", c.name, err)
			os.Exit(1)
		}
		return
	}
	fmt.Fprintf(os.Stderr, "adbot: unknown command %q\n\n", os.Args[1])
	usage()
	os.Exit(2)
}
