package ingest

import (
	"strings"
	"testing"

	"github.com/aqualoop/aqualoop/collector/config"
)

// TestSiteShard pins the hash: FNV-1a 32 of the site id (values computed outside Go, with the
// published FNV offset basis and prime), so that a release can never move a site silently.
func TestSiteShard(t *testing.T) {
	for _, tt := range []struct {
		site string
		hash uint32
	}{{"a", 0xe40c292c}, {"demo", 0xaefd3536}, {"plant-7.north", 0x7438c463}} {
		for _, n := range []int{1, 2, 3, 7} {
			if got, want := SiteShard(tt.site, n), int(tt.hash%uint32(n)); got != want {
				t.Errorf("SiteShard(%q, %d) = %d, want %d", tt.site, n, got, want)
			}
		}
	}
	// Every site has exactly one owner.
	for _, site := range []string{"a", "demo", "plant-7.north", "x"} {
		owners := 0
		for i := range 3 {
			if (Partition{Index: i, Count: 3}).Owns(site) {
				owners++
			}
		}
		if owners != 1 {
			t.Errorf("%s has %d owners of 3", site, owners)
		}
	}
	if !(Partition{}).Owns("anything") {
		t.Error("an unpartitioned instance must own every site")
	}
}

// partitionFile is a config file holding one partition section, read through config.Parse
// so that problems come out as an operator sees them.
type partitionFile struct {
	Partition Partition `yaml:"partition"`
	env       map[string]string
}

func (f *partitionFile) Default()                    { f.Partition.resolve(func(k string) string { return f.env[k] }) }
func (f *partitionFile) Validate(p *config.Problems) { f.Partition.Validate(p, "ingest.partition") }

func TestPartitionConfig(t *testing.T) {
	for _, tt := range []struct {
		name    string
		yaml    string
		env     map[string]string
		index   int
		wantErr string
	}{
		{"plain", "partition: {index: 2, count: 3}", nil, 2, ""},
		{"pod name", "partition: {count: 3, index_env: POD_NAME}", map[string]string{"POD_NAME": "aqualoop-1"}, 1, ""},
		{"number", "partition: {count: 3, index_env: IDX}", map[string]string{"IDX": "2"}, 2, ""},
		{"unset", "partition: {count: 3, index_env: POD_NAME}", nil, 0, "ingest.partition.index_env: environment variable POD_NAME is not set"},
		{"no ordinal", "partition: {count: 3, index_env: POD_NAME}", map[string]string{"POD_NAME": "aqualoop"}, 0, `ingest.partition.index_env: POD_NAME="aqualoop" holds no index`},
		{"out of range", "partition: {count: 3, index_env: POD_NAME}", map[string]string{"POD_NAME": "aqualoop-3"}, 3, "ingest.partition.index: 3 is outside 0..2"},
		{"negative count", "partition: {count: -1}", nil, 0, "ingest.partition.count: -1 is negative"},
		{"unknown key", "partition: {count: 3, idx: 1}", nil, 0, "idx"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := partitionFile{env: tt.env}
			err := config.Parse("aqualoop.yaml", []byte(tt.yaml), &f)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected problems: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("problems %v, want %q", err, tt.wantErr)
			}
			if tt.wantErr == "" && f.Partition.Index != tt.index {
				t.Errorf("index %d, want %d", f.Partition.Index, tt.index)
			}
		})
	}
}

func TestPartitionFilters(t *testing.T) {
	cfg := Config{Partition: Partition{Index: 1, Count: 3}}
	cfg.Default()
	if cfg.MQTT.ClientID != "aqualoop-platform-1" {
		t.Errorf("client id %q, want the index in it", cfg.MQTT.ClientID)
	}
	in := New(cfg, nil, nil, Options{Sites: []string{"a", "demo", "plant-7.north"}})
	sub, drop := in.filters()
	if len(sub) != 1 || sub["aqualoop/v1/a/meters/+"] != 1 {
		t.Errorf("subscriptions %v, want only site a's (FNV-1a %% 3 = 1)", sub)
	}
	if !strings.Contains(strings.Join(drop, " "), "aqualoop/v1/demo/meters/+") || !strings.Contains(strings.Join(drop, " "), "$share/aqualoop/aqualoop/v1/+/meters/+") {
		t.Errorf("unsubscribed %v, want the other sites and the unpartitioned filters", drop)
	}
	if in.owns("aqualoop/v1/demo/meters/M1") || !in.owns("aqualoop/v1/a/meters/M1") {
		t.Error("owns disagrees with the partition")
	}
}
