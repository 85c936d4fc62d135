package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aqualoop/aqualoop/analytics/ledger"
	"github.com/aqualoop/aqualoop/collector"
	"github.com/aqualoop/aqualoop/collector/config"
	"github.com/aqualoop/aqualoop/internal/testenv"
)

// deadAddr is a 127.0.0.1 address nobody listens on.
func deadAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// file is a config file with an influx section, as cmd would embed it.
type file struct {
	Influx InfluxConfig `yaml:"influx"`
}

func (f *file) Default()                    { f.Influx.Default() }
func (f *file) Validate(p *config.Problems) { f.Influx.Validate(p, "influx") }

func TestInfluxConfig(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		want    InfluxConfig
		wantErr []string // "line: path: message" fragments, in order
	}{
		{
			name: "defaults",
			yaml: "influx:\n  urls: [http://127.0.0.1:8086]\n  bucket: aqualoop/autogen\n",
			want: InfluxConfig{URLs: []string{"http://127.0.0.1:8086"}, Bucket: "aqualoop/autogen", Database: "aqualoop", Timeout: 10 * time.Second},
		},
		{
			name: "explicit",
			yaml: "influx:\n  urls: [https://a:8086, http://b:8086]\n  token: u:p\n  org: plant\n  bucket: water\n  database: waterdb\n  create_database: true\n  timeout: 3s\n",
			want: InfluxConfig{URLs: []string{"https://a:8086", "http://b:8086"}, Token: "u:p", Org: "plant", Bucket: "water", Database: "waterdb", CreateDatabase: true, Timeout: 3 * time.Second},
		},
		{
			name:    "every problem at once",
			yaml:    "influx:\n  urls: [127.0.0.1:8086, 'ftp://x', 'http://user:hunter2@']\n  token: a\n  token_file: /run/secrets/influx\n  timeout: -1s\n",
			wantErr: []string{`t.yaml:2: influx.urls[0]: `, `t.yaml:2: influx.urls[1]: scheme "ftp" is not http or https`, `t.yaml:2: influx.urls[2]: has no host`, "t.yaml:4: influx.token_file: set token or token_file, not both", "t.yaml:2: influx.bucket: is required", "t.yaml:5: influx.timeout: -1s is negative"},
		},
		{
			name:    "no urls",
			yaml:    "influx:\n  bucket: a/b/c\n",
			wantErr: []string{"influx.urls: at least one URL", `influx.bucket: "a/b/c" has more than one '/'`},
		},
		{
			name:    "roll-ups elsewhere",
			yaml:    "influx:\n  urls: [http://a]\n  bucket: db/autogen\n  rollup_bucket: other/rollups\n",
			wantErr: []string{`influx.rollup_bucket: database "other" differs from the bucket's "db"`},
		},
		{
			name:    "roll-ups without a retention policy",
			yaml:    "influx:\n  urls: [http://a]\n  bucket: db/autogen\n  rollup_bucket: db\n",
			wantErr: []string{`influx.rollup_bucket: "db" is not "db/rp"`},
		},
		{
			name:    "unknown key",
			yaml:    "influx:\n  urls: [http://a]\n  bucket: b\n  password: x\n",
			wantErr: []string{"t.yaml:4: influx.password: unknown key"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f file
			err := config.Parse("t.yaml", []byte(tt.yaml), &f)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(f.Influx, tt.want) {
					t.Errorf("got %+v\nwant %+v", f.Influx, tt.want)
				}
				return
			}
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("Parse = %v, want a *config.Error", err)
			}
			if len(ce.Problems) != len(tt.wantErr) {
				t.Errorf("%d problems, want %d:\n%v", len(ce.Problems), len(tt.wantErr), err)
			}
			lines := strings.Split(err.Error(), "\n")
			for i, w := range tt.wantErr {
				if i >= len(lines) || !strings.Contains(lines[i], w) {
					t.Errorf("problem %d: want it to contain %q; all:\n%v", i, w, err)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("a password is printed: %v", err)
			}
		})
	}
}

func TestOpenInfluxHidesSecrets(t *testing.T) {
	const token, password = "tok-s3cret-value", "pw-s3cret-value"
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	for _, cfg := range []InfluxConfig{
		{URLs: []string{"http://admin:" + password + "@" + deadAddr(t)}, Token: token, Bucket: "db"},
		{URLs: []string{"http://" + deadAddr(t), "http://admin:" + password + "@" + deadAddr(t) + "/x"}, TokenFile: tokenFile, Bucket: "db"},
		{URLs: []string{"http://admin:" + password + "@" + deadAddr(t) + "/x", "not a url " + password}, Token: token, Bucket: "db"},
	} {
		_, err := OpenInflux(context.Background(), cfg, logger)
		if err == nil {
			t.Fatalf("OpenInflux(%v) with no server succeeded", cfg.URLs)
		}
		for _, secret := range []string{token, password} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error shows a secret: %v", err)
			}
			if strings.Contains(logs.String(), secret) {
				t.Errorf("log shows a secret: %s", logs.String())
			}
		}
	}
}

func TestOpenInfluxMissingTokenFile(t *testing.T) {
	cfg := InfluxConfig{URLs: []string{"http://" + deadAddr(t)}, TokenFile: filepath.Join(t.TempDir(), "absent"), Bucket: "db"}
	_, err := OpenInflux(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenInflux = %v, want a wrapped os.ErrNotExist", err)
	}
}

func TestInfluxSpecifics(t *testing.T) {
	in := testenv.InfluxDB(t)
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))

	// create_database makes the database; without it, writes to a missing database fail with an
	// error worth retrying (an operator can create it), not ErrRejected.
	missing, err := OpenInflux(ctx, InfluxConfig{URLs: []string{in.URL()}, Bucket: "absent"}, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer missing.Close()
	err = missing.WriteReadings(ctx, []collector.Reading{reading(site, "M", t0, 1, 1)})
	t.Log(err)
	if err == nil || errors.Is(err, ErrRejected) {
		t.Errorf("write to a missing database = %v, want a retryable error", err)
	}

	s, err := OpenInflux(ctx, InfluxConfig{URLs: []string{in.URL()}, Bucket: "fresh/autogen", CreateDatabase: true}, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := reading(site, "M", t0, 1, 1)
	if err := s.WriteReadings(ctx, []collector.Reading{r}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Readings(ctx, site, "M", t0, t0.Add(1))
	if err != nil {
		t.Fatal(err)
	}
	sameReadings(t, "after create_database", got, []collector.Reading{r})

	tests := []struct {
		name   string
		points []collector.Point
	}{
		{"point named like a field", []collector.Point{{Name: "seq", Value: 1}}},
		{"point named like a tag", []collector.Point{{Name: "meter", Value: 1}}},
		{"point named like another's quality", []collector.Point{{Name: "flow", Value: 1}, {Name: "flow_q", Value: 1}}},
		{"point named like another's code", []collector.Point{{Name: "flow_code", Value: 1}, {Name: "flow", Value: 1}}},
		// "level_q" was stored as a float above (its own point); here it would be level's integer
		// quality: the server refuses the type change with 400.
		{"type conflict with stored data", []collector.Point{{Name: "level", Value: 1}}},
	}
	first := reading(site, "N", t0, 1, 1)
	first.Points = []collector.Point{{Name: "level_q", Value: 0.5}}
	if err := s.WriteReadings(ctx, []collector.Reading{first}); err != nil {
		t.Fatal(err)
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := reading(site, "N", t0.Add(time.Duration(i+1)*time.Second), 2, 1)
			r.Points = tt.points
			err := s.WriteReadings(ctx, []collector.Reading{r})
			t.Log(err)
			if !errors.Is(err, ErrRejected) {
				t.Errorf("WriteReadings = %v, want ErrRejected", err)
			}
		})
	}
}

// TestInfluxTornReading: a point of which influxd kept only some fields (a write split over WAL
// entries, the server killed between them) is no reading: reads skip it without failing, and
// writing the reading again, as ingest does after the failed write, completes the point instead
// of setting it aside.
func TestInfluxTornReading(t *testing.T) {
	in := testenv.InfluxDB(t)
	in.CreateDatabase(t, "torn")
	ctx := context.Background()
	r := reading(site, "T", t0, 7, 42)
	// Only the totalizer's value and quality reached the disk: no seq, edge, time_source, points.
	line := fmt.Sprintf("reading,meter=T,site=%s total=42,total_q=0i %d\n", site, t0.UnixNano())
	resp, err := http.Post(in.URL()+"/write?db=torn&rp=autogen", "text/plain", strings.NewReader(line))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("write the torn point: %s", resp.Status)
	}
	// The platform restarts: the store learns each meter's newest time, the torn point's.
	s, err := OpenInflux(ctx, InfluxConfig{URLs: []string{in.URL()}, Bucket: "torn/autogen"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if rs, err := s.Readings(ctx, site, "T", t0, t0.Add(1)); err != nil || len(rs) != 0 {
		t.Fatalf("the torn point reads as %v, %v; want no reading and no error", rs, err)
	}
	if err := s.WriteReadings(ctx, []collector.Reading{r}); err != nil {
		t.Fatalf("writing over a torn point: %v", err)
	}
	got, err := s.Readings(ctx, site, "T", t0, t0.Add(1))
	if err != nil {
		t.Fatal(err)
	}
	sameReadings(t, "after the torn point was written again", got, []collector.Reading{r})
	if cs, err := s.Conflicts(ctx, site, "T", t0, t0.Add(1)); err != nil || len(cs) != 0 {
		t.Errorf("conflicts %v, %v: the completed reading was set aside", cs, err)
	}
}

// TestInfluxTornBucket: influxd stores each field of a point on its own, so a bucket can be
// seen (mid-write, or for good after a crash) with its volume and without its coverage.
// MeterTotals must not count such a half: it reads again and, if the point stays torn, fails
// with an error that says so; once the ledger writes the bucket again, the sum is whole.
func TestInfluxTornBucket(t *testing.T) {
	in := testenv.InfluxDB(t)
	in.CreateDatabase(t, "tornb")
	ctx := context.Background()
	s, err := OpenInflux(ctx, InfluxConfig{URLs: []string{in.URL()}, Bucket: "tornb/autogen"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	line := fmt.Sprintf("volume,meter=T,site=%s volume=2.5 %d\n", site, t0.UnixNano())
	resp, err := http.Post(in.URL()+"/write?db=tornb&rp=autogen", "text/plain", strings.NewReader(line))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("write the torn point: %s", resp.Status)
	}
	if ts, err := s.MeterTotals(ctx, site, t0, t0.Add(time.Minute)); err == nil || !strings.Contains(err.Error(), "some of its fields or parts only") {
		t.Fatalf("MeterTotals over a torn bucket: %v, %v; want the torn point's error", ts, err)
	}
	b := ledger.Bucket{Site: site, Meter: "T", Start: t0, Volume: 2.5, Coverage: 1}
	if err := s.WriteBuckets(ctx, []ledger.Bucket{b}); err != nil {
		t.Fatal(err)
	}
	ts, err := s.MeterTotals(ctx, site, t0, t0.Add(time.Minute))
	if err != nil || len(ts) != 1 || ts[0].Volume != 2.5 || ts[0].Coverage != 1 || ts[0].Buckets != 1 {
		t.Fatalf("after the bucket was written again: %+v, %v", ts, err)
	}
}
