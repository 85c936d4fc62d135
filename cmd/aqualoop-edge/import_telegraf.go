package main

import (
	"fmt"
	"io"
	"os"

	"github.com/aqualoop/aqualoop/collector/config"
	"github.com/aqualoop/aqualoop/collector/edge"
	"github.com/aqualoop/aqualoop/collector/telegraf"
)

// cmdImportTelegraf converts a telegraf.conf to edge.yaml on stdout; what it could not map goes
// to stderr (and into a comment at the top of the file).
func cmdImportTelegraf(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("import-telegraf", "telegraf.conf > edge.yaml", stderr)
	if err := parse(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	path := fs.Arg(0)
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read telegraf config: %w", err)
	}
	res, err := telegraf.Convert(path, data)
	if err != nil {
		return err
	}
	out, err := res.YAML()
	if err != nil {
		return err
	}
	for _, n := range res.Notes {
		fmt.Fprintln(stderr, "note:", n)
	}
	// What is written must load: a converter bug shows here, not on the edge.
	var check edge.Config
	if err := config.Parse("edge.yaml (converted)", out, &check); err != nil {
		fmt.Fprintf(stderr, "the converted file needs fixing before use:\n%v\n", err)
	}
	_, err = stdout.Write(out)
	return err
}
