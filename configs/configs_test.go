package configs

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestWriteDemo checks that the embedded demo files are the files of the repository, byte for
// byte, so the demo a user runs from any folder is the one documented in configs/demo.
func TestWriteDemo(t *testing.T) {
	dir := t.TempDir()
	names, err := WriteDemo(filepath.Join(dir, "configs"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"aqualoop.yaml", "edge.yaml", "inputs.csv", "plant.yaml", "site.yaml"} {
		if !slices.Contains(names, want) {
			t.Errorf("embedded demo lacks %s (has %v)", want, names)
		}
	}
	for _, n := range names {
		got, err := os.ReadFile(filepath.Join(dir, "configs", n))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join("demo", n))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: written copy differs from configs/demo/%s", n, n)
		}
	}
}
