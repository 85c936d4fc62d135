// Command aqualoop-edge is the lean edge collector: it polls water meters over Modbus and OPC UA
// and publishes their readings over MQTT. It carries no database client.
//
//	aqualoop-edge collect --config edge.yaml
//	aqualoop-edge probe --controller tcp://10.0.0.5:502 --slave 3 --address 0 --count 8
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: aqualoop-edge <command> [flags]

commands:
  collect --config FILE   poll the meters of FILE and publish their readings
  probe   [flags]         read a Modbus register range and print every decoding side by side
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	// gopcua prints to the standard log package; route that through slog at debug level so it
	// stays out of an operator's console unless asked for.
	slog.SetDefault(logger)
	slog.SetLogLoggerLevel(slog.LevelDebug)
	var err error
	switch args[0] {
	case "collect":
		err = cmdCollect(ctx, args[1:], logger)
	case "probe":
		err = cmdProbe(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "aqualoop-edge: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "aqualoop-edge %s: %v\n", args[0], err)
		return 1
	}
	return 0
}
