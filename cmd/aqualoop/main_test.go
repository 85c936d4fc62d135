package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestHelpAndVersion checks that asking for help succeeds on every command, as a user expects
// of -h, and that version names the build.
func TestHelpAndVersion(t *testing.T) {
	for _, args := range [][]string{
		{"-h"}, {"--help"}, {"help"},
		{"serve", "-h"}, {"demo", "-h"}, {"simulate", "--help"}, {"check", "-h"}, {"token", "create", "-h"},
	} {
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != 0 {
			t.Errorf("aqualoop %s: exit %d, want 0; stderr %q", strings.Join(args, " "), code, errOut.String())
		}
		if out.Len()+errOut.Len() == 0 {
			t.Errorf("aqualoop %s printed nothing", strings.Join(args, " "))
		}
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"version"}, &out, &errOut); code != 0 || !strings.HasPrefix(out.String(), "aqualoop ") || !strings.Contains(out.String(), "go1.") {
		t.Errorf("aqualoop version: exit %d, %q", code, out.String())
	}
	if code := run([]string{"frobnicate"}, &out, &errOut); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
}
