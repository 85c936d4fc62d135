// Package configs carries the example configurations inside the binaries, so that
// `aqualoop demo` runs from any directory: the demo writes them to its data folder and reads
// them from there, exactly as it would read files given with --config-dir.
package configs

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

//go:embed demo/*.yaml demo/*.csv
var demo embed.FS

// WriteDemo writes the demo plant's configuration files (plant.yaml, edge.yaml, aqualoop.yaml,
// site.yaml, inputs.csv) into dir, creating it, and returns their names.
func WriteDemo(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	entries, err := fs.ReadDir(demo, "demo")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		b, err := fs.ReadFile(demo, "demo/"+e.Name())
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o640); err != nil {
			return nil, fmt.Errorf("write demo config: %w", err)
		}
		names = append(names, e.Name())
	}
	return names, nil
}

// Demo returns the embedded demo configuration file name (for example "plant.yaml").
func Demo(name string) ([]byte, error) { return demo.ReadFile("demo/" + name) }
