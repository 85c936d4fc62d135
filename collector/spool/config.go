package spool

import (
	"fmt"
	"time"

	"github.com/aqualoop/aqualoop/collector/config"
)

// Fsync policies, the values of Config.Fsync.
const (
	// FsyncAlways syncs every appended reading before Append returns, so not even a power cut
	// loses an acknowledged Append. Appends that run at the same time share one fsync.
	FsyncAlways = "always"
	// FsyncInterval syncs every FsyncInterval: a power cut loses at most that much, a crash of the
	// process (kill -9 included) nothing, since every Append reaches the kernel before it returns.
	FsyncInterval = "interval"
	// FsyncNever leaves writing back to the kernel. A crash of the process still loses nothing;
	// a power cut loses whatever the kernel had not written.
	FsyncNever = "never"
)

const (
	defaultMaxBytes      = 256 << 20
	defaultSegmentBytes  = 4 << 20
	defaultFsyncInterval = time.Second
	minSegmentBytes      = 4 << 10
	maxSegmentBytes      = 1 << 30
)

// Config places and bounds the spool.
type Config struct {
	Dir string `yaml:"dir"`
	// MaxBytes bounds the disk use of the spool; beyond it the oldest segments are dropped.
	MaxBytes int64 `yaml:"max_bytes"`
	// SegmentBytes is the size of one segment file, the unit of dropping and deletion.
	SegmentBytes  int64         `yaml:"segment_bytes"`
	Fsync         string        `yaml:"fsync"`
	FsyncInterval time.Duration `yaml:"fsync_interval"`
}

// Default fills the fields left at their zero value.
func (c *Config) Default() {
	if c.MaxBytes == 0 {
		c.MaxBytes = defaultMaxBytes
	}
	if c.SegmentBytes == 0 {
		c.SegmentBytes = defaultSegmentBytes
	}
	if c.Fsync == "" {
		c.Fsync = FsyncInterval
	}
	if c.FsyncInterval == 0 {
		c.FsyncInterval = defaultFsyncInterval
	}
}

// Validate reports every problem under path.
func (c *Config) Validate(p *config.Problems, path string) {
	for _, pr := range c.problems() {
		p.Addf(path+"."+pr.key, "%s", pr.msg)
	}
}

// problem is one thing wrong with a Config, at a key relative to it.
type problem struct{ key, msg string }

// problems is shared by Validate and by Open, which refuses a config it cannot work with even
// when the caller skipped validation.
func (c *Config) problems() []problem {
	var ps []problem
	add := func(key, format string, args ...any) {
		ps = append(ps, problem{key, fmt.Sprintf(format, args...)})
	}
	if c.Dir == "" {
		add("dir", "is required: the directory that holds the spool")
	}
	switch {
	case c.SegmentBytes < minSegmentBytes:
		add("segment_bytes", "%d is below the minimum of %d", c.SegmentBytes, minSegmentBytes)
	case c.SegmentBytes > maxSegmentBytes:
		add("segment_bytes", "%d is above the maximum of %d", c.SegmentBytes, maxSegmentBytes)
	}
	// Dropping works a segment at a time: with fewer than two, a drop would empty the spool.
	if c.MaxBytes < 2*c.SegmentBytes {
		add("max_bytes", "%d must be at least twice segment_bytes (%d)", c.MaxBytes, c.SegmentBytes)
	}
	switch c.Fsync {
	case FsyncAlways, FsyncInterval, FsyncNever:
	default:
		add("fsync", "%q is not one of always, interval, never", c.Fsync)
	}
	if c.FsyncInterval <= 0 {
		add("fsync_interval", "%s must be positive", c.FsyncInterval)
	}
	return ps
}
