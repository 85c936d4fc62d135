// Command aqualoop-edge is the lean edge collector: it polls water meters over Modbus and OPC UA
// and publishes their readings over MQTT. It carries no database client.
//
//	aqualoop-edge collect --config edge.yaml
//	aqualoop-edge check edge.yaml
//	aqualoop-edge probe --controller tcp://10.0.0.5:502 --slave 3 --address 0 --count 8
//	aqualoop-edge probe --controller tcp://10.0.0.5:502 --slave 3 --scan --from 0 --to 999
//	aqualoop-edge browse --endpoint opc.tcp://10.0.0.9:4840
//	aqualoop-edge import-telegraf telegraf.conf > edge.yaml
//	aqualoop-edge version
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
	"runtime/debug"
	"syscall"
)

const usage = `usage: aqualoop-edge <command> [flags]
commands:
  collect --config FILE      poll the meters of FILE and publish their readings
  check FILE...              check edge config files and print every problem with file:line: key.path
  probe [flags]              read a Modbus register range and print every decoding side by side;
                             --scan maps which registers a device has and ranks totalizer and flow candidates
  browse --endpoint URL      list an OPC UA server's namespaces and variables with their data types
  import-telegraf FILE       convert Telegraf's inputs.modbus and inputs.opcua sections to edge.yaml (stdout)
  version                    print the version
Run "aqualoop-edge <command> -h" for a command's flags. Configuration reference: docs/edge.md.
`

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

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
		err = cmdCollect(ctx, args[1:], stdout, stderr, logger)
	case "check":
		return cmdCheck(args[1:], stdout, stderr)
	case "probe":
		err = cmdProbe(ctx, args[1:], stdout, stderr)
	case "browse":
		err = cmdBrowse(ctx, args[1:], stdout, stderr)
	case "import-telegraf":
		err = cmdImportTelegraf(args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "aqualoop-edge", versionString())
		return 0
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "aqualoop-edge: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0 // -h: the flag set printed its usage
	case errors.Is(err, errUsage):
		return 2 // a bad flag: the flag set said which
	case err != nil:
		fmt.Fprintf(stderr, "aqualoop-edge %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

// errUsage is a command line the flag package refused and already explained.
var errUsage = errors.New("usage")

// newFlags is a flag set that prints its usage to stderr, or to stdout for -h, which exits 0.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "usage: aqualoop-edge %s %s\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args; -h and --help print the usage on stdout.
func parse(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "--help" || a == "-help" {
			fs.SetOutput(stdout)
			fs.Usage()
			return flag.ErrHelp
		}
	}
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	return nil
}

// versionString is the -ldflags version, else the module version and VCS revision Go recorded.
func versionString() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := info.Main.Version
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			if len(s.Value) > 12 {
				s.Value = s.Value[:12]
			}
			v += " " + s.Value
		case "vcs.modified":
			if s.Value == "true" {
				v += "+dirty"
			}
		}
	}
	return v + " " + info.GoVersion
}
