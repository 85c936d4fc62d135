package main

import (
	"fmt"
	"io"

	"github.com/aqualoop/aqualoop/collector/edge"
)

// cmdCheck validates edge files as collect would load them and prints every problem of every
// file, as file:line: key.path: message, the same lines as `aqualoop check`. It returns the exit
// code: 0 all good, 1 a file has problems, 2 a usage error.
func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("check", "FILE...", stderr)
	var files multiFlag
	fs.Var(&files, "config", "edge config file to check (repeatable; positional arguments work too)")
	if err := parse(fs, args, stdout); err != nil {
		if err == errUsage {
			return 2
		}
		return 0
	}
	files = append(files, fs.Args()...)
	if len(files) == 0 {
		fmt.Fprintln(stderr, "aqualoop-edge check: no file given")
		return 2
	}
	bad := 0
	for _, f := range files {
		if _, err := edge.LoadConfig(f); err != nil {
			bad++
			fmt.Fprintln(stderr, err)
			continue
		}
		fmt.Fprintf(stdout, "%s: ok (edge)\n", f)
	}
	if bad > 0 {
		return 1
	}
	return 0
}

type multiFlag []string

func (m *multiFlag) String() string     { return fmt.Sprint(*m) }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }
