package testenv

import "testing"

// Chromium returns the path of a headless-capable Chromium for browser tests (Debian's
// `chromium` package puts it at /usr/bin/chromium). Like Require, it skips the test on a
// developer machine without it and fails it when CI is set.
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := lookup(name); err == nil {
			return p
		}
	}
	return Require(t, "chromium")
}
