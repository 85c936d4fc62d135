package opcua

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestBrowse lists the test server's namespaces and its variables with their data types, in
// the nsu= form node_id accepts, and the listed id reads with a Source.
func TestBrowse(t *testing.T) {
	ts := startServer(t, serverOpts{decoyFirst: true, vars: []string{"m1.total", "m1.flow"}})
	var out bytes.Buffer
	err := Browse(t.Context(), BrowseConfig{Server: Config{Endpoint: ts.url, Timeout: 5 * time.Second}, Depth: 1}, &out)
	if err != nil {
		t.Fatal(err)
	}
	text := out.String()
	t.Log("\n" + text)
	for _, want := range []string{
		"ns=0  http://opcfoundation.org/UA/",
		testNamespace,
		"nsu=" + testNamespace + ";s=m1.total",
		"nsu=urn:aqualoop:decoy;s=m1.total",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("browse output lacks %q", want)
		}
	}
	var line string
	for l := range strings.Lines(text) {
		if strings.Contains(l, "nsu="+testNamespace+";s=m1.total") {
			line = l
		}
	}
	if f := strings.Fields(line); len(f) < 4 || f[1] != "Variable" || f[len(f)-1] != "Double" {
		t.Errorf("row of m1.total %q, want a Variable of data type Double", line)
	}
}
