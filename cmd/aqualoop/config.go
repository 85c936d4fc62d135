package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/analytics/api/auth"
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
	// DataDir holds what the platform writes: the SQLite store and the platform state. Default:
	// $STATE_DIRECTORY (set by systemd's StateDirectory=), else $XDG_STATE_HOME/aqualoop, else
	// ~/.local/state/aqualoop; never the config folder, which may be read-only or shared.
	DataDir string `yaml:"data_dir"`
	// Alerting is the rules files and resend interval (cmd/aqualoop/alerting.go).
	Alerting alertingConfig `yaml:"alerting"`
	// Report holds the fonts and signing keys of evidence packs.
	Report reportConfig `yaml:"report"`

	dir string
}

type sqliteConfig struct {
	Path string `yaml:"path"` // relative to data_dir
}

type httpConfig struct {
	Listen string `yaml:"listen"`
	// auth, tls, proxy, session_ttl: see analytics/api/auth and docs/security.md.
	auth.Config `yaml:",inline"`
}

type brokerConfig struct {
	Listen string `yaml:"listen"`
	// PasswordFile holds the edges' accounts in mosquitto_passwd format (user = site id); with it,
	// or Users, every client must log in and the per-site topic ACL applies.
	PasswordFile string `yaml:"password_file"`
	// Users are accounts given inline: name → mosquitto_passwd hash ($7$...), never a password.
	Users map[string]string `yaml:"users"`
	// PlatformUser is the platform's account (default aqualoop-platform), as in deploy/mosquitto.
	PlatformUser string         `yaml:"platform_user"`
	TLS          auth.TLSConfig `yaml:"tls"`
}

// accounts are the broker's accounts from the file and the config; none means anonymous.
func (b brokerConfig) accounts() (map[string]string, error) {
	users := map[string]string{}
	if b.PasswordFile != "" {
		var err error
		if users, err = readPasswordFile(b.PasswordFile); err != nil {
			return nil, err
		}
	}
	for u, h := range b.Users {
		if _, err := parseMosquittoHash(h); err != nil {
			return nil, fmt.Errorf("broker.users.%s: %w", u, err)
		}
		users[u] = h
	}
	return users, nil
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
	c.HTTP.Config.Default()
	c.Alerting.Notify.Default()
	if c.Broker.PlatformUser == "" {
		c.Broker.PlatformUser = "aqualoop-platform"
	}
	// Files are relative to this config file.
	for _, f := range []*string{&c.HTTP.TLS.CertFile, &c.HTTP.TLS.KeyFile, &c.Broker.PasswordFile, &c.Broker.TLS.CertFile, &c.Broker.TLS.KeyFile} {
		*f = c.path(*f)
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
	c.HTTP.Config.Validate(p, "http")
	if c.Alerting.notifying() {
		c.Alerting.Notify.Validate(p, "alerting.notify")
	}
	if c.HTTP.Auth == auth.ModeOpen && !auth.Loopback(c.HTTP.Listen) {
		p.Addf("http.auth", "open serves every caller as admin, so it needs a loopback http.listen (not %q); use tokens", c.HTTP.Listen)
	}
	if c.Broker.Listen != "" {
		if (c.Broker.TLS.CertFile == "") != (c.Broker.TLS.KeyFile == "") {
			p.Addf("broker.tls", "cert_file and key_file go together")
		}
		if c.Broker.PasswordFile != "" {
			if _, err := readPasswordFile(c.Broker.PasswordFile); err != nil {
				p.Addf("broker.password_file", "%v", err)
			}
		}
		for u, h := range c.Broker.Users {
			if _, err := parseMosquittoHash(h); err != nil {
				p.Addf("broker.users."+u, "%v (make one with mosquitto_passwd)", err)
			}
		}
		if c.Broker.PasswordFile == "" && len(c.Broker.Users) == 0 && !auth.Loopback(c.Broker.Listen) {
			p.Addf("broker.listen", "%q is not a loopback address, so the broker needs accounts: set broker.password_file (mosquitto_passwd format, one account per site id)", c.Broker.Listen)
		}
	}
}

// warnings are what `aqualoop check` says about a valid config that is risky to run as it is.
func (c *platformConfig) warnings() []string {
	var w []string
	if !auth.Loopback(c.HTTP.Listen) && !c.HTTP.TLS.Enabled() {
		w = append(w, fmt.Sprintf("http.listen %s is reachable from other hosts without TLS: tokens and session cookies cross the network in clear text; set http.tls.cert_file and key_file, or put a TLS proxy in front and listen on loopback", c.HTTP.Listen))
	}
	if c.Broker.Listen != "" && !auth.Loopback(c.Broker.Listen) && !c.Broker.TLS.Enabled() {
		w = append(w, fmt.Sprintf("broker.listen %s is reachable from other hosts without TLS: edge passwords and readings cross the network in clear text; set broker.tls.cert_file and key_file", c.Broker.Listen))
	}
	if c.Broker.Listen != "" && !auth.Loopback(c.Broker.Listen) && c.Broker.PasswordFile == "" && len(c.Broker.Users) == 0 {
		w = append(w, fmt.Sprintf("broker.listen %s takes anonymous clients", c.Broker.Listen))
	}
	return w
}

// usesInflux reports whether readings go to InfluxDB rather than SQLite.
func (c *platformConfig) usesInflux() bool { return len(c.InfluxDB.URLs) > 0 }

// dataPath resolves a file the platform writes against the data folder.
func (c *platformConfig) dataPath(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.DataDir, p)
}

// defaultDataDir is where a platform keeps its data when neither the flag nor the file says.
func defaultDataDir() string {
	if d := os.Getenv("STATE_DIRECTORY"); d != "" {
		// systemd may list several folders separated by colons; the first is ours.
		return strings.Split(d, ":")[0]
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "aqualoop")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "aqualoop")
	}
	return filepath.Join(os.TempDir(), "aqualoop")
}

// prepareDataDir settles the data folder: the command line's, else $AQUALOOP_DATA_DIR, else
// the file's data_dir (relative to the file), else the default; and creates it.
func (c *platformConfig) prepareDataDir(flagDir string) error {
	switch {
	case flagDir != "":
		c.DataDir = flagDir
	case os.Getenv("AQUALOOP_DATA_DIR") != "":
		// Commands other than serve (report, register, token) find serve's folder this way.
		c.DataDir = os.Getenv("AQUALOOP_DATA_DIR")
	case c.DataDir == "":
		c.DataDir = defaultDataDir()
	default:
		c.DataDir = c.path(c.DataDir)
	}
	if err := os.MkdirAll(c.DataDir, 0o750); err != nil {
		return fmt.Errorf("create data folder: %w", err)
	}
	return nil
}

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
