// Command aqualoop is the platform: it ingests readings, keeps the volume ledger, computes the
// water indicators and serves them. Subcommands: serve, demo, simulate, check, token, version.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: aqualoop <command> [flags]

commands:
  serve     --config FILE      run the platform (ingest, ledger, indicators, API)
  demo      [--listen ADDR]    run simulator, edge, embedded broker and platform in one process
  simulate  --config FILE      run the plant simulator (Modbus TCP, OPC UA, ground truth API)
  check     FILE...            validate config files and print every problem with file and line
  token     create|list|revoke API tokens (aqualoop token for details)
  report    --site S --period P --format pdf|xlsx|csv|zip --out F   evidence pack (report key: public key)
  verify    PACK.zip [--pubkey F] [--store CONFIG]                  check a pack's signature, hashes and data
  register  --site S list|cert|swap                                 meter register: certificates, replacements
  version                      print the version

Run "aqualoop <command> -h" for a command's flags.
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
	case "serve":
		err = cmdServe(ctx, args[1:], stdout, logger)
	case "demo":
		err = cmdDemo(ctx, args[1:], stdout, logger)
	case "simulate":
		err = cmdSimulate(ctx, args[1:], stdout, logger)
	case "check":
		return cmdCheck(args[1:], stdout, stderr)
	case "version", "--version":
		cmdVersion(stdout)
		return 0
	case "token":
		err = cmdToken(ctx, args[1:], stdout)
	case "report":
		err = cmdReport(ctx, args[1:], stdout, logger)
	case "verify":
		err = cmdVerify(ctx, args[1:], stdout, logger)
	case "register":
		err = cmdRegister(ctx, args[1:], stdout, logger)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "aqualoop: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0 // the flag set printed the command's usage
	}
	if err != nil {
		fmt.Fprintf(stderr, "aqualoop %s: %v\n", args[0], err)
		return 1
	}
	return 0
}
