// Package server wires adbot serve: configuration, HTTP routes, the go-githubapp
// dispatcher, the embedded or external NATS server, the token broker and the redelivery sweeper.
package server

import (
	"context"
	"errors"
)

// ServeCommand runs `adbot serve`.
func ServeCommand(ctx context.Context, args []string) error { return errors.New("not built yet") }

// DevCommand runs `adbot dev`.
func DevCommand(ctx context.Context, args []string) error { return errors.New("not built yet") }

// SendCommand runs `adbot send EVENT FILE`.
func SendCommand(ctx context.Context, args []string) error { return errors.New("not built yet") }
