package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aqualoop/aqualoop/analytics/ledger"
	"github.com/aqualoop/aqualoop/analytics/report"
	"github.com/aqualoop/aqualoop/analytics/store"
	"github.com/aqualoop/aqualoop/collector"
)

// TestReportCLI runs report, report key, verify and register as an operator would, on a SQLite
// store holding October 2026 of the evidence-pack scenario's site.
func TestReportCLI(t *testing.T) {
	if _, err := report.LoadFonts("", ""); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	dir := t.TempDir()
	site, err := os.ReadFile("../../analytics/report/testdata/site.yaml")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "site.yaml"), site, 0o644)
	cfg := filepath.Join(dir, "aqualoop.yaml")
	os.WriteFile(cfg, []byte("sites: [site.yaml]\ningest: {mqtt: {servers: [\"tcp://127.0.0.1:1\"]}}\ndata_dir: data\nsqlite: {path: aqualoop.db}\nreport: {keys: keys}\n"), 0o644)
	os.MkdirAll(filepath.Join(dir, "data"), 0o755)

	// A month of hourly readings of the intake meter.
	st, err := store.OpenSQLite(filepath.Join(dir, "data", "aqualoop.db"))
	if err != nil {
		t.Fatal(err)
	}
	cst := time.FixedZone("CST", 8*3600)
	var rs []collector.Reading
	for i, at := 0, time.Date(2026, 10, 1, 0, 0, 0, 0, cst); !at.After(time.Date(2026, 11, 1, 0, 0, 0, 0, cst)); i, at = i+1, at.Add(time.Hour) {
		rs = append(rs, collector.Reading{Site: "t", Meter: "M1", Seq: uint64(i + 1), Time: at.UTC(),
			Points: []collector.Point{{Name: collector.PointTotal, Value: 100 + float64(i), Unit: "m3", Quality: collector.Good}}})
	}
	ctx := context.Background()
	if err := st.WriteReadings(ctx, rs); err != nil {
		t.Fatal(err)
	}
	bs, _ := ledger.Compute(ledger.MeterSpec{Site: "t", Meter: "M1", RegisterMax: 100000, Interval: time.Hour}, rs)
	if err := st.WriteBuckets(ctx, bs); err != nil {
		t.Fatal(err)
	}
	st.Close()

	exec := func(want int, args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != want {
			t.Fatalf("aqualoop %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, want, out.String(), errb.String())
		}
		return out.String() + errb.String()
	}
	pack := filepath.Join(dir, "t-2026-10.zip")
	exec(0, "report", "--config", cfg, "--site", "t", "--period", "2026-10", "--out", pack)
	pub := exec(0, "report", "key", "--config", cfg, "--site", "t")
	if !strings.Contains(pub, "BEGIN PUBLIC KEY") {
		t.Fatalf("report key printed %q", pub)
	}
	pubFile := filepath.Join(dir, "t.pub")
	os.WriteFile(pubFile, []byte(pub), 0o644)
	if out := exec(0, "verify", pack, "--pubkey", pubFile, "--store", cfg); !strings.Contains(out, "verified") {
		t.Errorf("verify printed %q", out)
	}

	// Errors leave no file behind.
	for _, tc := range []struct{ period, out, text string }{
		{"2199-02", filepath.Join(dir, "future.pdf"), "after now"},
		{"2026-03", filepath.Join(dir, "empty.xlsx"), "no ledger data"},
	} {
		out := exec(1, "report", "--config", cfg, "--site", "t", "--period", tc.period, "--out", tc.out)
		if !strings.Contains(out, tc.text) {
			t.Errorf("report %s: %q lacks %q", tc.period, out, tc.text)
		}
		if _, err := os.Stat(tc.out); !os.IsNotExist(err) {
			t.Errorf("report %s left %s behind", tc.period, tc.out)
		}
		if m, _ := filepath.Glob(filepath.Join(dir, ".*.tmp*")); len(m) > 0 {
			t.Errorf("temporary files left: %v", m)
		}
	}
	if out := exec(1, "verify", pack, "--pubkey", filepath.Join(dir, "missing.pub")); !strings.Contains(out, "key file missing") {
		t.Errorf("verify with a missing key file: %q", out)
	}
	if out := exec(1, "report", "--config", cfg, "--site", "nope", "--period", "2026-10", "--out", filepath.Join(dir, "x.csv")); !strings.Contains(out, `unknown site "nope"`) {
		t.Errorf("unknown site: %q", out)
	}

	// The register from the CLI: a certificate, kept with who entered it.
	exec(0, "register", "--config", cfg, "--site", "t", "cert", "--meter", "M3", "--date", "2026-10-20", "--number", "JD-9", "--by", "inspector-wang")
	if out := exec(0, "register", "--config", cfg, "--site", "t", "list"); !strings.Contains(out, "JD-9") {
		t.Errorf("register list: %q", out)
	}
	if out := exec(1, "register", "--config", cfg, "--site", "t", "cert", "--meter", "M3", "--date", "20-10-2026", "--number", "JD-9"); !strings.Contains(out, "not a date") {
		t.Errorf("bad date: %q", out)
	}
}
