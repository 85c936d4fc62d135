package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestDataDir checks where serve keeps its data: the flag, then data_dir of the file (relative
// to the file), then systemd's STATE_DIRECTORY, then XDG_STATE_HOME; never the config folder.
func TestDataDir(t *testing.T) {
	base := t.TempDir()
	cfgDir := filepath.Join(base, "etc")
	tests := []struct {
		name, flag, file, state, xdg string
		want                         string
	}{
		{name: "flag wins", flag: filepath.Join(base, "flag"), file: "rel", state: filepath.Join(base, "state"), want: filepath.Join(base, "flag")},
		{name: "file, relative to the file", file: "data", state: filepath.Join(base, "state"), want: filepath.Join(cfgDir, "data")},
		{name: "systemd state directory", state: filepath.Join(base, "state") + ":/other", xdg: filepath.Join(base, "xdg"), want: filepath.Join(base, "state")},
		{name: "XDG state home", xdg: filepath.Join(base, "xdg"), want: filepath.Join(base, "xdg", "aqualoop")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("STATE_DIRECTORY", tc.state)
			t.Setenv("XDG_STATE_HOME", tc.xdg)
			c := &platformConfig{dir: cfgDir, DataDir: tc.file}
			c.Default()
			if err := c.prepareDataDir(tc.flag); err != nil {
				t.Fatal(err)
			}
			if c.DataDir != tc.want {
				t.Fatalf("data folder %s, want %s", c.DataDir, tc.want)
			}
			if fi, err := os.Stat(tc.want); err != nil || !fi.IsDir() {
				t.Errorf("data folder %s not created: %v", tc.want, err)
			}
			if got, want := c.dataPath(c.SQLite.Path), filepath.Join(tc.want, "aqualoop.db"); got != want {
				t.Errorf("SQLite store at %s, want %s", got, want)
			}
		})
	}
}
