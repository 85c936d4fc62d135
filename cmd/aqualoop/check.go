package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"go.yaml.in/yaml/v3"

	"github.com/aqualoop/aqualoop/alerting"
	"github.com/aqualoop/aqualoop/alerting/notify"
	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/analytics/engine"
	"github.com/aqualoop/aqualoop/collector/config"
	"github.com/aqualoop/aqualoop/collector/edge"
	"github.com/aqualoop/aqualoop/collector/sim"
)

type multiFlag []string

func (m *multiFlag) String() string     { return fmt.Sprint(*m) }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

// cmdCheck validates config files of any kind and prints every problem. It returns the exit code.
func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var files multiFlag
	fs.Var(&files, "config", "config file to check (repeatable; positional arguments work too)")
	kind := fs.String("kind", "", "site, edge, plant, platform, notify or rules (default: recognised from the file's keys)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	files = append(files, fs.Args()...)
	if len(files) == 0 {
		fmt.Fprintln(stderr, "aqualoop check: no file given (--config FILE)")
		return 2
	}
	bad := 0
	for _, f := range files {
		k, err := checkFile(f, *kind)
		if err != nil {
			bad++
			fmt.Fprintln(stderr, err)
			continue
		}
		fmt.Fprintf(stdout, "%s: ok (%s)\n", f, k)
		if k == "platform" {
			if cfg, err := loadPlatform(f); err == nil {
				for _, w := range cfg.warnings() {
					fmt.Fprintf(stdout, "%s: warning: %s\n", f, w)
				}
			}
		}
	}
	if bad > 0 {
		return 1
	}
	return 0
}

// checkFile validates one file and returns its kind.
func checkFile(path, kind string) (string, error) {
	if kind == "" {
		var err error
		if kind, err = detectKind(path); err != nil {
			return "", err
		}
	}
	switch kind {
	case "site":
		_, err := analytics.LoadSite(path)
		return kind, err
	case "edge":
		_, err := edge.LoadConfig(path)
		return kind, err
	case "plant":
		_, err := sim.LoadConfig(path)
		return kind, err
	case "notify":
		_, err := notify.LoadFile(path)
		return kind, err
	case "rules":
		// Alone, a rules file is checked without the site models; through its platform file
		// its meters and nodes are checked too.
		_, err := alerting.LoadRules(path, nil)
		return kind, err
	case "platform":
		cfg, err := loadPlatform(path)
		if err != nil {
			return kind, err
		}
		sites, err := cfg.loadSites()
		if err != nil {
			return kind, err
		}
		if _, err := cfg.loadRules(sites); err != nil {
			return kind, err
		}
		if cfg.InputsFile == "" {
			return kind, nil
		}
		f, err := os.Open(cfg.path(cfg.InputsFile))
		if err != nil {
			return kind, fmt.Errorf("%s: inputs_file: %w", path, err)
		}
		defer f.Close()
		_, err = engine.ReadInputsCSV(f, cfg.path(cfg.InputsFile), sites)
		return kind, err
	}
	return "", fmt.Errorf("%s: kind %q is not one of site, edge, plant, platform, notify, rules", path, kind)
}

// detectKind recognises a file by its top-level keys.
func detectKind(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read config: %w", err)
	}
	var top map[string]yaml.Node
	if err := yaml.Unmarshal(data, &top); err != nil {
		// Let the real loader report the syntax error with its line.
		return "", config.Parse(path, data, &struct{}{})
	}
	has := func(k string) bool { _, ok := top[k]; return ok }
	switch {
	case has("nodes") || has("flows"):
		return "site", nil
	case has("ingest") || has("sites"):
		return "platform", nil
	case has("edge"):
		return "edge", nil
	case has("rules") || has("silences"):
		return "rules", nil
	case has("time_scale") || has("leak") || has("noise"):
		return "plant", nil
	case has("route") || has("receivers"):
		return "notify", nil
	}
	return "", errors.New(path + ": cannot tell which kind of config this is; pass --kind site|edge|plant|platform|notify|rules")
}
