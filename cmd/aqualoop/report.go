package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/analytics/api/auth"
	"github.com/aqualoop/aqualoop/analytics/engine"
	"github.com/aqualoop/aqualoop/analytics/ledger"
	"github.com/aqualoop/aqualoop/analytics/register"
	"github.com/aqualoop/aqualoop/analytics/report"
	"github.com/aqualoop/aqualoop/collector/config"
)

// reportConfig is the `report:` section of aqualoop.yaml.
type reportConfig struct {
	// Font is the CJK TrueType font of the PDF (default report.DefaultFont, from
	// fonts-droid-fallback); LatinFont the font of everything else (default DejaVu Sans).
	Font      string `yaml:"font"`
	LatinFont string `yaml:"latin_font"`
	// Keys is the folder of the sites' Ed25519 signing keys, <site>.key, created on first use
	// (default "keys" in the data folder; a relative path is taken in the data folder too).
	Keys string `yaml:"keys"`
}

// Validate has nothing to check before the files are read: a missing font or key is reported
// when a pack is made, with its path.
func (c *reportConfig) Validate(*config.Problems) {}

func (c *platformConfig) keyPath(site string) string {
	dir := c.Report.Keys
	if dir == "" {
		dir = "keys"
	}
	return filepath.Join(c.dataPath(dir), site+".key")
}

// siteFiles maps each site id to its model file.
func (c *platformConfig) siteFiles() (map[string]string, error) {
	out := map[string]string{}
	for _, f := range c.Sites {
		s, err := analytics.LoadSite(c.path(f))
		if err != nil {
			return nil, err
		}
		out[s.ID] = c.path(f)
	}
	return out, nil
}

// newMaker wires the evidence packs: the engine and store of the platform, the register, the
// fonts (read once, on first use) and the keys (created on first use).
func newMaker(cfg *platformConfig, sites []*analytics.Site, eng *engine.Engine, st report.Store, reg *register.Register, now func() time.Time, logger *slog.Logger) (*report.Maker, error) {
	files, err := cfg.siteFiles()
	if err != nil {
		return nil, err
	}
	fonts := sync.OnceValues(func() (report.Fonts, error) {
		return report.LoadFonts(cfg.path(cfg.Report.Font), cfg.path(cfg.Report.LatinFont))
	})
	var mu sync.Mutex
	var rg report.Register
	if reg != nil {
		rg = reg
	}
	return report.NewMaker(report.MakerOptions{
		Options: report.Options{Engine: eng, Store: st, Register: rg, Now: now, Version: buildVersion()},
		Sites:   sites,
		Fonts:   fonts,
		Key: func(site string) (ed25519.PrivateKey, error) {
			mu.Lock()
			defer mu.Unlock()
			k, created, err := report.LoadKey(cfg.keyPath(site), true)
			if created {
				logger.Info("signing key created for site", "site", site, "path", cfg.keyPath(site))
			}
			return k, err
		},
		SiteFile: func(site string) (report.SiteFile, error) {
			p, ok := files[site]
			if !ok {
				return report.SiteFile{}, fmt.Errorf("no site file for %s", site)
			}
			b, err := os.ReadFile(p)
			return report.SiteFile{Name: p, Data: b}, err
		},
		Logger: logger,
	}), nil
}

// registerWho names the person behind a register write: the caller's token, proxy user or session,
// with its role; without one (auth: open) the client address, so the entry still says where it
// came from.
func registerWho(r *http.Request) string {
	if p, ok := auth.FromContext(r.Context()); ok {
		return p.Name + " (" + p.Role.String() + ", " + p.Via + ")"
	}
	return "unauthenticated@" + r.RemoteAddr
}

// platform is the read side of the platform opened by a command: store, state DB, engine.
type platform struct {
	cfg   *platformConfig
	sites []*analytics.Site
	st    platformStore
	reg   *register.Register
	eng   *engine.Engine
	close func()
}

func openPlatform(ctx context.Context, path string, logger *slog.Logger) (*platform, error) {
	cfg, err := loadPlatform(path)
	if err != nil {
		return nil, err
	}
	if err := cfg.prepareDataDir(""); err != nil {
		return nil, err
	}
	sites, err := cfg.loadSites()
	if err != nil {
		return nil, err
	}
	st, err := openStore(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	db, err := openState(cfg)
	if err != nil {
		st.Close()
		return nil, err
	}
	reg, err := register.Open(ctx, db, nil)
	if err != nil {
		db.Close()
		st.Close()
		return nil, err
	}
	return &platform{cfg: cfg, sites: sites, st: st, reg: reg, eng: engine.New(sites, st), close: func() { db.Close(); st.Close() }}, nil
}

const reportUsage = `usage:
  aqualoop report --config FILE --site S --period 2026-11|2026|2024..2026 --format pdf|xlsx|csv|zip --out FILE [--lang zh|en]
  aqualoop report key --config FILE --site S     print the site's public key (creates the key pair on first use)
`

func cmdReport(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	if len(args) > 0 && args[0] == "key" {
		return cmdReportKey(args[1:], stdout)
	}
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	path := fs.String("config", "configs/demo/aqualoop.yaml", "platform config file")
	site := fs.String("site", "", "site id")
	period := fs.String("period", "", "2026-11 (a month), 2026 (a year) or 2024..2026 (years)")
	format := fs.String("format", "", "pdf, xlsx, csv or zip (the signed pack); default: the extension of --out")
	out := fs.String("out", "", "output file")
	lang := fs.String("lang", "", "zh or en (default: zh for a site in Asia/, en otherwise)")
	fs.Usage = func() { fmt.Fprint(fs.Output(), reportUsage) }
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *format == "" {
		*format = strings.TrimPrefix(filepath.Ext(*out), ".")
	}
	if *site == "" || *period == "" || *out == "" {
		return errors.New("--site, --period and --out are required\n" + reportUsage)
	}
	p, err := openPlatform(ctx, *path, logger)
	if err != nil {
		return err
	}
	defer p.close()
	mk, err := newMaker(p.cfg, p.sites, p.eng, p.st, p.reg, time.Now, logger)
	if err != nil {
		return err
	}
	// Rendered in full before the temporary file is renamed into place: an error leaves no file.
	if err := report.WriteFileAtomic(*out, 0o644, func(w io.Writer) error {
		return mk.Make(ctx, w, *site, *period, *format, *lang)
	}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\n", *out)
	return nil
}

func cmdReportKey(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("report key", flag.ContinueOnError)
	path := fs.String("config", "configs/demo/aqualoop.yaml", "platform config file")
	site := fs.String("site", "", "site id")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadPlatform(*path)
	if err == nil {
		err = cfg.prepareDataDir("")
	}
	if err != nil {
		return err
	}
	files, err := cfg.siteFiles()
	if err != nil {
		return err
	}
	if _, ok := files[*site]; !ok {
		return fmt.Errorf("%w %q in %s", report.ErrUnknownSite, *site, *path)
	}
	k, created, err := report.LoadKey(cfg.keyPath(*site), true)
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(stdout, "# created %s\n", cfg.keyPath(*site))
	}
	fmt.Fprint(stdout, report.PublicKeyPEM(k.Public().(ed25519.PublicKey)))
	return nil
}

const verifyUsage = `usage: aqualoop verify PACK.zip [--pubkey FILE] [--store CONFIG]
  --pubkey  the site's public key (PEM from 'aqualoop report key'); without it only integrity is checked
  --store   a platform config: also recompute from its store and site model and name the first day that changed
`

func cmdVerify(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	pubkey := fs.String("pubkey", "", "public key file")
	storeCfg := fs.String("store", "", "platform config file")
	fs.Usage = func() { fmt.Fprint(fs.Output(), verifyUsage) }
	var packs []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		packs = append(packs, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(packs) != 1 {
		return errors.New("give one pack\n" + verifyUsage)
	}
	f, err := os.Open(packs[0])
	if err != nil {
		return fmt.Errorf("open pack: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("open pack: %w", err)
	}
	var o report.VerifyOptions
	if *pubkey != "" {
		b, err := os.ReadFile(*pubkey)
		if err != nil {
			return fmt.Errorf("%w: read public key: %w", report.ErrNoKey, err)
		}
		if o.PublicKey, err = report.ParsePublicKey(b); err != nil {
			return err
		}
	}
	if *storeCfg != "" {
		p, err := openPlatform(ctx, *storeCfg, logger)
		if err != nil {
			return err
		}
		defer p.close()
		files, err := p.cfg.siteFiles()
		if err != nil {
			return err
		}
		// The site is the pack's; read the manifest first to know which.
		v0, err := report.Verify(ctx, f, fi.Size(), report.VerifyOptions{PublicKey: o.PublicKey})
		if err != nil {
			return err
		}
		site := v0.Manifest.Site
		path, ok := files[site]
		if !ok {
			return fmt.Errorf("%w %q: not in %s", report.ErrUnknownSite, site, *storeCfg)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read site model: %w", err)
		}
		for _, s := range p.sites {
			if s.ID == site {
				o.Site = s
			}
		}
		o.Store, o.Engine, o.SiteFile = p.st, p.eng, report.SiteFile{Name: path, Data: data}
		v, err := report.Verify(ctx, f, fi.Size(), o)
		if err != nil {
			return err
		}
		return printVerification(stdout, packs[0], v)
	}
	v, err := report.Verify(ctx, f, fi.Size(), o)
	if err != nil {
		return err
	}
	return printVerification(stdout, packs[0], v)
}

// errNotVerified makes verify exit 1 after printing its problems.
var errNotVerified = errors.New("the pack does not verify")

func printVerification(w io.Writer, name string, v *report.Verification) error {
	if v.Manifest != nil {
		fmt.Fprintf(w, "pack %s: site %s, period %s, made %s by aqualoop %s\n", name, v.Manifest.Site, v.Manifest.Period.Label,
			v.Manifest.Generated.Format(time.RFC3339), v.Manifest.Version)
	}
	fmt.Fprintf(w, "signature checked with %s\n", v.Signer)
	for _, c := range v.Checked {
		fmt.Fprintf(w, "ok    %s\n", c)
	}
	for _, p := range v.Problems {
		fmt.Fprintf(w, "FAIL  %s\n", p)
	}
	if !v.OK() {
		return fmt.Errorf("%w: %d problems", errNotVerified, len(v.Problems))
	}
	fmt.Fprintln(w, "verified")
	return nil
}

const registerUsage = `usage:
  aqualoop register --config FILE --site S list
  aqualoop register --config FILE --site S cert --meter M --date 2026-11-15 --number N --result pass|fail [--valid-until D] [--note T] [--by NAME]
  aqualoop register --config FILE --site S swap --meter M --time 2026-11-20T12:07 --old-final X --new-initial Y [--note T] [--by NAME]
`

func cmdRegister(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	fs := flag.NewFlagSet("register", flag.ContinueOnError)
	path := fs.String("config", "configs/demo/aqualoop.yaml", "platform config file")
	site := fs.String("site", "", "site id")
	fs.Usage = func() { fmt.Fprint(fs.Output(), registerUsage) }
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *site == "" || fs.NArg() == 0 {
		return errors.New("--site and a subcommand are required\n" + registerUsage)
	}
	p, err := openPlatform(ctx, *path, logger)
	if err != nil {
		return err
	}
	defer p.close()
	var s *analytics.Site
	for _, x := range p.sites {
		if x.ID == *site {
			s = x
		}
	}
	if s == nil {
		return fmt.Errorf("%w %q", report.ErrUnknownSite, *site)
	}
	sub, rest := fs.Arg(0), fs.Args()[1:]
	who := "cli"
	if u, err := user.Current(); err == nil {
		who = "cli:" + u.Username
	}
	switch sub {
	case "list":
		certs, err := p.reg.Certificates(ctx, s.ID, "")
		if err != nil {
			return err
		}
		for _, m := range s.Meters {
			st := register.MeterStatus(s, m, register.EffectiveCertificates(certs), time.Now(), time.Time{}, time.Time{})
			due := "—"
			if !st.NextDue.IsZero() {
				due = st.NextDue.Format(time.DateOnly)
			}
			fmt.Fprintf(stdout, "%-12s level %d  verified %-10s  certificate %-16s  next due %-10s  %s\n", m.ID, m.Level, st.VerifiedOn, st.Certificate, due, st.Status)
		}
		xs, err := p.reg.Replacements(ctx, s.ID, "")
		if err != nil {
			return err
		}
		for _, x := range xs {
			fmt.Fprintf(stdout, "replacement #%d %s at %s: old final %v, new initial %v (entered by %s at %s)\n", x.ID, x.Meter,
				x.Time.In(s.Location()).Format(time.DateTime), x.OldFinal, x.NewInitial, x.RecordedBy, x.RecordedAt.Format(time.RFC3339))
		}
		return nil
	case "cert":
		cf := flag.NewFlagSet("register cert", flag.ContinueOnError)
		var c register.Certificate
		cf.StringVar(&c.Meter, "meter", "", "meter id")
		cf.StringVar(&c.Date, "date", "", "verification date YYYY-MM-DD")
		cf.StringVar(&c.Number, "number", "", "certificate number")
		cf.StringVar(&c.Result, "result", register.ResultPass, "pass or fail")
		cf.StringVar(&c.ValidUntil, "valid-until", "", "validity stated on the certificate, YYYY-MM-DD")
		cf.StringVar(&c.Note, "note", "", "note")
		cf.Int64Var(&c.Supersedes, "supersedes", 0, "id of the entry this one corrects")
		cf.StringVar(&who, "by", who, "who enters it")
		if err := cf.Parse(rest); err != nil {
			return err
		}
		if _, ok := s.Meter(c.Meter); !ok {
			return fmt.Errorf("meter %q is not in the register of site %s", c.Meter, s.ID)
		}
		c.Site = s.ID
		c, err := p.reg.AddCertificate(ctx, c, who)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "certificate #%d of %s stored\n", c.ID, c.Meter)
		return nil
	case "swap":
		cf := flag.NewFlagSet("register swap", flag.ContinueOnError)
		var x register.Replacement
		at := cf.String("time", "", "time of the swap: RFC 3339, or a local time in the site's zone")
		cf.StringVar(&x.Meter, "meter", "", "meter id")
		cf.Float64Var(&x.OldFinal, "old-final", -1, "the old meter's final reading, m³")
		cf.Float64Var(&x.NewInitial, "new-initial", -1, "the new meter's initial reading, m³")
		cf.StringVar(&x.Note, "note", "", "note")
		cf.Int64Var(&x.Supersedes, "supersedes", 0, "id of the entry this one corrects")
		cf.StringVar(&who, "by", who, "who enters it")
		if err := cf.Parse(rest); err != nil {
			return err
		}
		if _, ok := s.Meter(x.Meter); !ok {
			return fmt.Errorf("meter %q is not in the register of site %s", x.Meter, s.ID)
		}
		if x.Time, err = register.ParseTime(*at, s.Location()); err != nil {
			return err
		}
		x.Site = s.ID
		x, err := p.reg.AddReplacement(ctx, x, who)
		if err != nil {
			return err
		}
		n, err := recomputeSwap(ctx, p, s, x)
		if err != nil {
			return fmt.Errorf("replacement #%d stored, but the ledger was not recomputed: %w", x.ID, err)
		}
		fmt.Fprintf(stdout, "replacement #%d of %s stored; %d ledger buckets recomputed (a running 'serve' picks the record up at its next start)\n", x.ID, x.Meter, n)
		return nil
	}
	return fmt.Errorf("unknown register subcommand %q\n%s", sub, registerUsage)
}

// recomputeSwap recomputes and stores the ledger buckets of a swap's interval with the register's
// records, so the swap's volume reaches the ledger.
func recomputeSwap(ctx context.Context, p *platform, s *analytics.Site, x register.Replacement) (int, error) {
	led := ledger.New(ledger.SpecsOf(s), p.st, nil, ledger.WithReplacements(p.reg.Lookup))
	bs, err := led.Recompute(ctx, s.ID, x.Meter, x.Time)
	if err != nil {
		return 0, err
	}
	return len(bs), p.st.WriteBuckets(ctx, bs)
}
