//go:build !unix

package modbus

import (
	"testing"
	"time"
)

// cpuTime is not measured here; the benchmark then leaves the CPU figure out.
func cpuTime(*testing.B) time.Duration { return -1 }
