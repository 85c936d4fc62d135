// Package report builds the evidence pack a pilot enterprise hands to an auditor: one data model
// (Pack), built from the same engine functions the API answers with, rendered as PDF, XLSX and
// CSV, and sealed in a zip with a manifest of SHA-256 hashes signed by the site's Ed25519 key.
// The contents follow the outline of a GB/T 12452 water balance test report (水平衡测试报告) as the
// MIIT wastewater recycling pilot needs it: the enterprise and period, sources, the meter
// register, metering per GB/T 24789, the water balance diagram and tables, every GB/T 7119
// indicator with its formula and volumes, monthly series against the sector benchmark,
// withdrawal against plan for the last three years, data quality, and a one-page summary
// against the pilot conditions.
//
// Verify checks a pack: its signature, every file's hash and, given the store, the canonical
// readings and ledger buckets of every day behind the figures.
package report

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/analytics/engine"
	"github.com/aqualoop/aqualoop/analytics/ledger"
	"github.com/aqualoop/aqualoop/analytics/register"
	"github.com/aqualoop/aqualoop/collector"
)

// Errors callers branch on (the API answers 404 or 400).
var (
	ErrUnknownSite = errors.New("unknown site")
	ErrBadPeriod   = errors.New("bad report period")
	ErrFuture      = errors.New("report period has not begun")
	ErrNoData      = errors.New("no data in the report period")
)

// Period kinds.
const (
	KindMonth = "month" // 2026-11
	KindYear  = "year"  // 2026
	KindYears = "years" // 2024..2026
)

// Period is what a pack covers: whole calendar months or years in the site's time zone, cut at
// the instant the pack was made when the period has not ended yet (Partial).
type Period struct {
	Label   string    `json:"label"`
	Kind    string    `json:"kind"`
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Partial bool      `json:"partial,omitempty"`
}

var (
	monthRe = regexp.MustCompile(`^(\d{4})-(\d{2})$`)
	yearRe  = regexp.MustCompile(`^(\d{4})$`)
	yearsRe = regexp.MustCompile(`^(\d{4})\.\.(\d{4})$`)
)

// ParsePeriod reads "2026-11", "2026" or "2024..2026" in loc. A period that begins after now is
// an error; one that has not ended is cut at now (to the minute) and marked partial.
func ParsePeriod(s string, loc *time.Location, now time.Time) (Period, error) {
	p := Period{Label: s}
	atoi := func(x string) int { n, _ := strconv.Atoi(x); return n }
	switch {
	case monthRe.MatchString(s):
		m := monthRe.FindStringSubmatch(s)
		y, mo := atoi(m[1]), atoi(m[2])
		if mo < 1 || mo > 12 {
			return p, fmt.Errorf("%w: %q: month %d is not 01..12", ErrBadPeriod, s, mo)
		}
		p.Kind, p.From = KindMonth, time.Date(y, time.Month(mo), 1, 0, 0, 0, 0, loc)
		p.To = p.From.AddDate(0, 1, 0)
	case yearRe.MatchString(s):
		p.Kind, p.From = KindYear, time.Date(atoi(s), 1, 1, 0, 0, 0, 0, loc)
		p.To = p.From.AddDate(1, 0, 0)
	case yearsRe.MatchString(s):
		m := yearsRe.FindStringSubmatch(s)
		a, b := atoi(m[1]), atoi(m[2])
		if b < a || b-a > 9 {
			return p, fmt.Errorf("%w: %q: write first..last year, at most ten years", ErrBadPeriod, s)
		}
		p.Kind, p.From, p.To = KindYears, time.Date(a, 1, 1, 0, 0, 0, 0, loc), time.Date(b+1, 1, 1, 0, 0, 0, 0, loc)
	default:
		return p, fmt.Errorf("%w: %q is not a month (2026-11), a year (2026) or years (2024..2026)", ErrBadPeriod, s)
	}
	if p.From.Year() < 2000 {
		return p, fmt.Errorf("%w: %q is before 2000", ErrBadPeriod, s)
	}
	if !now.After(p.From) {
		return p, fmt.Errorf("%w: %s begins %s, after now (%s)", ErrFuture, s, p.From.Format(time.DateOnly), now.In(loc).Format(time.DateTime))
	}
	if now.Before(p.To) {
		p.To, p.Partial = ledger.Align(now).In(loc), true
	}
	return p, nil
}

// Engine is what a pack is computed with: the same functions the API answers with. The
// period's site, balance and unit figures are computed from one Read with the engine's pure
// functions (Compute, ComputeBalance, ComputeUnit), exactly as Engine.Indicators, Balance and
// UnitIndicators do, so a site with hundreds of units reads its ledger once.
type Engine interface {
	Read(ctx context.Context, s *analytics.Site, from, to time.Time) (engine.Data, error)
	Indicators(ctx context.Context, site string, from, to time.Time) (engine.Indicators, error)
	Plans(ctx context.Context, site string, at time.Time) ([]engine.PlanStatus, error)
}

var _ Engine = (*engine.Engine)(nil)

// Store is what the pack reads beside the engine: the readings and ledger buckets behind the
// figures, which it hashes day by day and sums per hour.
type Store interface {
	Readings(ctx context.Context, site, meter string, from, to time.Time) ([]collector.Reading, error)
	Buckets(ctx context.Context, site string, from, to time.Time) ([]ledger.Bucket, error)
}

// Register is the meter register kept in the platform (nil: only the site file's dates).
type Register interface {
	Certificates(ctx context.Context, site, meter string) ([]register.Certificate, error)
	Replacements(ctx context.Context, site, meter string) ([]register.Replacement, error)
}

// Options are what Build needs.
type Options struct {
	Engine   Engine
	Store    Store
	Register Register
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Version is the aqualoop version written in the manifest.
	Version string
}

// SiteInfo names the enterprise.
type SiteInfo struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Park     string `json:"park,omitempty"`
	Timezone string `json:"timezone"`
}

// SourceRow is one water source (水源) with what it gave over the period.
type SourceRow struct {
	Node         string  `json:"node"`
	Name         string  `json:"name"`
	Kind         string  `json:"kind"`
	Conventional bool    `json:"conventional"`
	Flows        string  `json:"flows"`
	Meters       string  `json:"meters"`
	Volume       float64 `json:"volume"`
	Coverage     float64 `json:"coverage"`
}

// MeterRow is one line of the meter register (水计量器具一览表).
type MeterRow struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Level       int       `json:"level"`
	DN          int       `json:"dn"`
	Class       int       `json:"class"`
	Type        string    `json:"type"`
	Location    string    `json:"location"`
	Flow        string    `json:"flow"`
	VerifiedOn  string    `json:"verified_on"`
	Certificate string    `json:"certificate"`
	NextDue     time.Time `json:"next_due,omitzero"`
	Status      string    `json:"status"`
	// Unverified lists the days of the period without a valid verification.
	Unverified     []string `json:"unverified,omitempty"`
	UnverifiedDays int      `json:"unverified_days"`
}

// MonthRow is one month of the series.
type MonthRow struct {
	Label    string    `json:"label"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	Vi       float64   `json:"vi"`
	Vu       float64   `json:"vu"`
	Vr       float64   `json:"vr"`
	R        *float64  `json:"reuse_rate"`
	RWithVu  *float64  `json:"reuse_rate_with_vu"`
	Coverage float64   `json:"coverage"`
}

// PlanRow is one withdrawal plan, or one month without a plan, against what was taken.
type PlanRow struct {
	Plan     string   `json:"plan"`
	Period   string   `json:"period"`
	Year     int      `json:"year"`
	Month    int      `json:"month,omitempty"`
	Source   string   `json:"source"`
	Approval string   `json:"approval,omitempty"`
	Planned  *float64 `json:"planned"` // nil: no plan for this month
	Used     float64  `json:"used"`
	Coverage float64  `json:"coverage"`
	Over     bool     `json:"over"`
}

// MeterQuality is the data quality of one meter over the period, from its ledger buckets.
type MeterQuality struct {
	Meter string `json:"meter"`
	// Coverage is the fraction of the period's minutes with good data.
	Coverage float64 `json:"coverage"`
	Volume   float64 `json:"volume"`
	// Minutes counts the buckets of each kind.
	Gap, Estimated, Derived, Reset, Replaced, Clamped, Spike, Fault, Rollover int
	// EstimatedVolume is the volume in buckets flagged estimated or derived.
	EstimatedVolume float64 `json:"estimated_volume"`
	// MissingMinutes are minutes of the period without any bucket.
	MissingMinutes int `json:"missing_minutes"`
}

// Check is one pilot condition on the summary page.
type Check struct {
	Key    string `json:"key"`
	Pass   bool   `json:"pass"`
	Value  string `json:"value"`
	Target string `json:"target"`
	Detail string `json:"detail"`
}

// Hourly holds the hourly volume of every meter: Volume[h][m] for Hours[h] and Meters[m].
type Hourly struct {
	Meters []string    `json:"meters"`
	Hours  []time.Time `json:"hours"`
	Volume [][]float64 `json:"-"`
}

// Pack is the one data model every format is rendered from.
type Pack struct {
	Site         SiteInfo               `json:"site"`
	Period       Period                 `json:"period"`
	Generated    time.Time              `json:"generated"`
	Version      string                 `json:"version"`
	Declared     string                 `json:"declared"`
	Benchmark    *analytics.Benchmark   `json:"benchmark,omitempty"`
	Sources      []SourceRow            `json:"sources"`
	Meters       []MeterRow             `json:"meters"`
	Indicators   engine.Indicators      `json:"indicators"`
	Balance      engine.Balance         `json:"balance"`
	Units        []engine.Indicators    `json:"units"`
	Months       []MonthRow             `json:"months"`
	Plans        []PlanRow              `json:"plans"`
	PlanYears    []int                  `json:"plan_years"`
	Quality      []MeterQuality         `json:"quality"`
	Replacements []register.Replacement `json:"replacements"`
	Checks       []Check                `json:"checks"`
	// Gaps says the period's data is incomplete: some meter's coverage is below 1.
	Gaps   bool      `json:"gaps"`
	Hourly Hourly    `json:"-"`
	Days   []DayHash `json:"days"`

	site *analytics.Site
}

// Pass reports whether every pilot condition passes.
func (p *Pack) Pass() bool {
	for _, c := range p.Checks {
		if !c.Pass {
			return false
		}
	}
	return len(p.Checks) > 0
}

// Build computes the pack of a site over a period.
func Build(ctx context.Context, s *analytics.Site, period Period, o Options) (*Pack, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	loc := s.Location()
	p := &Pack{
		Site:      SiteInfo{ID: s.ID, Name: s.Name, Park: s.Park, Timezone: s.Timezone},
		Period:    period,
		Generated: o.Now().In(loc).Truncate(time.Second),
		Version:   o.Version,
		Benchmark: s.Indicators.Benchmark,
		site:      s,
	}
	from, to := engine.Align(period.From, period.To)
	d, err := o.Engine.Read(ctx, s, from, to)
	if err != nil {
		return nil, fmt.Errorf("compute indicators of %s: %w", s.ID, err)
	}
	ind := engine.Compute(s, d, from, to)
	hasData := false
	for _, f := range ind.Flows {
		if f.Meter != "" && f.Coverage > 0 {
			hasData = true
		}
	}
	if !hasData {
		return nil, fmt.Errorf("%w: site %s has no ledger data from %s to %s", ErrNoData, s.ID, from.Format(time.DateTime), to.Format(time.DateTime))
	}
	p.Indicators, p.Declared = ind, ind.Declared
	p.Balance = engine.ComputeBalance(s, d.Totals, from, to)
	for _, n := range s.Nodes {
		if n.Type != analytics.Unit {
			continue
		}
		u, _ := engine.ComputeUnit(s, n.ID, d, from, to)
		p.Units = append(p.Units, u)
	}
	p.sources(s)
	if err := p.months(ctx, o.Engine, s); err != nil {
		return nil, err
	}
	if err := p.plans(ctx, o.Engine, s, o.Now()); err != nil {
		return nil, err
	}
	var certs []register.Certificate
	if o.Register != nil {
		all, err := o.Register.Certificates(ctx, s.ID, "")
		if err != nil {
			return nil, err
		}
		certs = register.EffectiveCertificates(all)
		xs, err := o.Register.Replacements(ctx, s.ID, "")
		if err != nil {
			return nil, err
		}
		for _, x := range register.EffectiveReplacements(xs) {
			if !x.Time.Before(from) && x.Time.Before(to) {
				p.Replacements = append(p.Replacements, x)
			}
		}
	}
	p.register(s, certs)
	sc, err := Scan(ctx, o.Store, s, from, to)
	if err != nil {
		return nil, err
	}
	p.Days, p.Hourly = sc.Days, sc.Hourly
	p.quality(s, sc)
	p.checks(s)
	return p, nil
}

func (p *Pack) sources(s *analytics.Site) {
	for _, n := range s.Nodes {
		if n.Type != analytics.Source {
			continue
		}
		row := SourceRow{Node: n.ID, Name: n.Name, Kind: n.Kind, Coverage: 1}
		row.Conventional = !slices.Contains([]string{"reclaimed", "rain", "seawater", "brackish", "mine"}, n.Kind)
		var flows, meters []string
		for _, f := range p.Indicators.Flows {
			if f.From != n.ID {
				continue
			}
			flows = append(flows, f.ID)
			if f.Meter != "" {
				meters = append(meters, f.Meter)
			}
			row.Volume += f.Volume
			row.Coverage = min(row.Coverage, f.Coverage)
		}
		row.Flows, row.Meters = strings.Join(flows, ", "), strings.Join(meters, ", ")
		p.Sources = append(p.Sources, row)
	}
}

func (p *Pack) months(ctx context.Context, e Engine, s *analytics.Site) error {
	for m := p.Period.From; m.Before(p.Period.To); m = m.AddDate(0, 1, 0) {
		to := m.AddDate(0, 1, 0)
		if to.After(p.Period.To) {
			to = p.Period.To
		}
		ind, err := e.Indicators(ctx, s.ID, m, to)
		if err != nil {
			return fmt.Errorf("compute indicators of %s %s: %w", s.ID, m.Format("2006-01"), err)
		}
		p.Months = append(p.Months, MonthRow{Label: m.Format("2006-01"), From: m, To: to, Vi: ind.Volumes.Vi, Vu: ind.Volumes.Vu,
			Vr: ind.Volumes.Vr, R: ind.ReuseRate, RWithVu: ind.ReuseRateWithVu, Coverage: ind.Rates.ReuseRate.Coverage})
	}
	return nil
}

// plans lists, for the period's last year and the two before it, every plan of the site with
// what was taken, and the months with no monthly site plan with their intake.
func (p *Pack) plans(ctx context.Context, e Engine, s *analytics.Site, now time.Time) error {
	loc := s.Location()
	last := p.Period.To.Add(-time.Nanosecond).In(loc).Year()
	p.PlanYears = []int{last - 2, last - 1, last}
	end := time.Date(last+1, 1, 1, 0, 0, 0, 0, loc)
	at := end
	if now.Before(at) {
		at = now
	}
	sts, err := e.Plans(ctx, s.ID, at)
	if err != nil {
		return fmt.Errorf("compute withdrawal plans of %s: %w", s.ID, err)
	}
	monthPlan := map[[2]int]bool{}
	for _, st := range sts {
		if st.Year < last-2 || st.Year > last {
			continue
		}
		v := st.Volume
		p.Plans = append(p.Plans, PlanRow{Plan: st.Plan, Period: st.Period, Year: st.Year, Month: st.Month, Source: st.Source, Approval: st.Approval,
			Planned: &v, Used: st.Used, Coverage: st.Coverage, Over: st.Used > st.Volume})
		if st.Period == analytics.PeriodMonth && st.Source == "" {
			monthPlan[[2]int{st.Year, st.Month}] = true
		}
	}
	// Months without a monthly plan still show their intake, so every month of the three years
	// is on the page.
	for y := last - 2; y <= last; y++ {
		for mo := 1; mo <= 12; mo++ {
			from := time.Date(y, time.Month(mo), 1, 0, 0, 0, 0, loc)
			if !from.Before(at) || monthPlan[[2]int{y, mo}] {
				continue
			}
			to := from.AddDate(0, 1, 0)
			if to.After(at) {
				to = ledger.Align(at).In(loc)
			}
			ind, err := e.Indicators(ctx, s.ID, from, to)
			if err != nil {
				return fmt.Errorf("compute intake of %s %04d-%02d: %w", s.ID, y, mo, err)
			}
			p.Plans = append(p.Plans, PlanRow{Plan: fmt.Sprintf("site %04d-%02d", y, mo), Period: analytics.PeriodMonth, Year: y, Month: mo,
				Used: ind.Volumes.Vi, Coverage: ind.Rates.ReuseRate.Coverage})
		}
	}
	slices.SortStableFunc(p.Plans, func(a, b PlanRow) int {
		if a.Year != b.Year {
			return a.Year - b.Year
		}
		if (a.Period == analytics.PeriodYear) != (b.Period == analytics.PeriodYear) {
			if a.Period == analytics.PeriodYear {
				return -1
			}
			return 1
		}
		if a.Month != b.Month {
			return a.Month - b.Month
		}
		return strings.Compare(a.Source, b.Source)
	})
	return nil
}

func (p *Pack) register(s *analytics.Site, certs []register.Certificate) {
	flowOf := map[string]string{}
	for _, f := range s.Flows {
		if f.Meter != "" {
			flowOf[f.Meter] = f.ID
		}
	}
	for _, m := range s.Meters {
		// The status as it stood on the period's last minute.
		st := register.MeterStatus(s, m, certs, p.Period.To.Add(-time.Minute), p.Period.From, p.Period.To)
		p.Meters = append(p.Meters, MeterRow{ID: m.ID, Name: m.Name, Level: m.Level, DN: m.DN, Class: m.Class, Type: m.Type, Location: m.Location,
			Flow: flowOf[m.ID], VerifiedOn: st.VerifiedOn, Certificate: st.Certificate, NextDue: st.NextDue, Status: st.Status,
			Unverified: st.Unverified, UnverifiedDays: st.UnverifiedDays})
	}
}

func (p *Pack) quality(s *analytics.Site, sc *ScanResult) {
	minutes := int(p.Period.To.Sub(p.Period.From) / ledger.BucketWidth)
	for _, m := range s.Meters {
		q := sc.Quality[m.ID]
		q.Meter = m.ID
		q.MissingMinutes = minutes - sc.Buckets[m.ID]
		if minutes > 0 {
			q.Coverage = sc.Coverage[m.ID] / float64(minutes)
		}
		if q.Coverage < 1-1e-9 {
			p.Gaps = true
		}
		p.Quality = append(p.Quality, q)
	}
}
