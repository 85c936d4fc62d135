package main

import (
	"fmt"
	"path/filepath"

	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/analytics/ingest"
	"github.com/aqualoop/aqualoop/analytics/store"
	"github.com/aqualoop/aqualoop/collector/config"
)

// platformConfig is aqualoop.yaml.
type platformConfig struct {
	// Sites are site model files, relative to this file.
	Sites    []string           `yaml:"sites"`
	Ingest   ingest.Config      `yaml:"ingest"`
	InfluxDB store.InfluxConfig `yaml:"influxdb"`
	SQLite   sqliteConfig       `yaml:"sqlite"`
	HTTP     httpConfig         `yaml:"http"`
	// Broker, when Listen is set, runs an embedded MQTT broker in this process (small sites).
	Broker brokerConfig `yaml:"broker"`
	// InputsFile is a CSV of production inputs (product, output value, steam per site and
	// period) stored at start; relative to this file. Columns: engine.InputColumns.
	InputsFile string `yaml:"inputs_file"`
	// Report holds the fonts and signing keys of evidence packs.
	Report reportConfig `yaml:"report"`

	dir string
}

type sqliteConfig struct {
	Path string `yaml:"path"` // relative to the config file
}

type httpConfig struct {
	Listen string `yaml:"listen"`
}

type brokerConfig struct {
	Listen string `yaml:"listen"`
}

func (c *platformConfig) Default() {
	c.Ingest.Default()
	c.InfluxDB.Default()
	if c.SQLite.Path == "" {
		c.SQLite.Path = "aqualoop.db"
	}
	if c.HTTP.Listen == "" {
		c.HTTP.Listen = "127.0.0.1:8080"
	}
}

func (c *platformConfig) Validate(p *config.Problems) {
	if len(c.Sites) == 0 {
		p.Addf("sites", "at least one site model file is required")
	}
	c.Ingest.Validate(p, "ingest")
	if len(c.InfluxDB.URLs) > 0 {
		c.InfluxDB.Validate(p, "influxdb")
	}
}

// usesInflux reports whether readings go to InfluxDB rather than SQLite.
func (c *platformConfig) usesInflux() bool { return len(c.InfluxDB.URLs) > 0 }

func (c *platformConfig) path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.dir, p)
}

func loadPlatform(path string) (*platformConfig, error) {
	c := &platformConfig{dir: filepath.Dir(path)}
	if err := config.Load(path, c); err != nil {
		return nil, err
	}
	return c, nil
}

// loadSites reads every site model the platform config names.
func (c *platformConfig) loadSites() ([]*analytics.Site, error) {
	var sites []*analytics.Site
	seen := map[string]string{}
	for _, f := range c.Sites {
		s, err := analytics.LoadSite(c.path(f))
		if err != nil {
			return nil, err
		}
		if prev, dup := seen[s.ID]; dup {
			return nil, fmt.Errorf("site %q is defined in both %s and %s", s.ID, prev, f)
		}
		seen[s.ID] = f
		sites = append(sites, s)
	}
	return sites, nil
}
