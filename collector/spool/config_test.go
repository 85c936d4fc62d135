package spool

import (
	"strings"
	"testing"
	"time"

	"github.com/aqualoop/aqualoop/collector/config"
)

// file is how a parent config embeds the spool section.
type file struct {
	Spool Config `yaml:"spool"`
}

func (f *file) Default()                    { f.Spool.Default() }
func (f *file) Validate(p *config.Problems) { f.Spool.Validate(p, "spool") }

func TestConfigDefaults(t *testing.T) {
	var f file
	if err := config.Parse("edge.yaml", []byte("spool:\n  dir: /var/lib/aqualoop/spool\n"), &f); err != nil {
		t.Fatal(err)
	}
	want := Config{Dir: "/var/lib/aqualoop/spool", MaxBytes: 256 << 20, SegmentBytes: 4 << 20, Fsync: FsyncInterval, FsyncInterval: time.Second}
	if f.Spool != want {
		t.Fatalf("defaults = %+v, want %+v", f.Spool, want)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr []string // every line that must appear in the error; none for a valid file
	}{
		{"every field", "spool:\n  dir: /data/spool\n  max_bytes: 1073741824\n  segment_bytes: 8388608\n  fsync: always\n  fsync_interval: 250ms\n", nil},
		{"missing dir", "spool:\n  fsync: never\n", []string{"edge.yaml:2: spool.dir: is required"}},
		{"unknown policy", "spool:\n  dir: d\n  fsync: sometimes\n", []string{`edge.yaml:3: spool.fsync: "sometimes" is not one of always, interval, never`}},
		{"segment too small", "spool:\n  dir: d\n  segment_bytes: 100\n", []string{"edge.yaml:3: spool.segment_bytes: 100 is below the minimum of 4096"}},
		{"max below two segments", "spool:\n  dir: d\n  max_bytes: 5000000\n", []string{"edge.yaml:3: spool.max_bytes: 5000000 must be at least twice segment_bytes (4194304)"}},
		{"negative interval", "spool:\n  dir: d\n  fsync_interval: -1s\n", []string{"edge.yaml:3: spool.fsync_interval: -1s must be positive"}},
		{"every problem at once", "spool:\n  fsync: sometimes\n  segment_bytes: 2147483648\n", []string{
			"edge.yaml:2: spool.dir: is required",
			"edge.yaml:3: spool.segment_bytes: 2147483648 is above the maximum of 1073741824",
			"edge.yaml:2: spool.max_bytes: 268435456 must be at least twice segment_bytes",
			`edge.yaml:2: spool.fsync: "sometimes" is not one of`,
		}},
		{"unknown key", "spool:\n  dir: d\n  max_size: 10\n", []string{"edge.yaml:3: spool.max_size: unknown key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f file
			err := config.Parse("edge.yaml", []byte(tt.in), &f)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("valid file rejected: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("invalid file accepted")
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.wantErr) {
				t.Errorf("%d problems, want %d:\n%v", len(lines), len(tt.wantErr), err)
			}
			for _, want := range tt.wantErr {
				found := false
				for _, l := range lines {
					found = found || strings.HasPrefix(l, want)
				}
				if !found {
					t.Errorf("no problem %q in:\n%v", want, err)
				}
			}
		})
	}
}
