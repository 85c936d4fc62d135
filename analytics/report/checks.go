package report

import (
	"fmt"
	"strings"

	"github.com/aqualoop/aqualoop/analytics"
)

// Pilot condition keys (DOMAIN.md, "Pilot conditions").
const (
	CheckReuseRate    = "reuse_rate"   // declared reuse rate above the sector average
	CheckMetering     = "metering"     // equipping and metering rate per level, GB/T 24789
	CheckVerification = "verification" // every meter verified on every day of the period
	CheckPlans        = "plans"        // no withdrawal over plan in the last three years
)

// Pct formats a fraction as a percentage with two decimals: the one way a rate is printed.
func Pct(v float64) string { return fmt.Sprintf("%.2f%%", v*100) }

// PctPtr formats a rate that may be undefined.
func PctPtr(v *float64) string {
	if v == nil {
		return "—"
	}
	return Pct(*v)
}

// Vol formats a volume in m³ with two decimals: the one way a volume is printed.
func Vol(v float64) string { return fmt.Sprintf("%.2f", v) }

func (p *Pack) declaredRate() *float64 {
	if p.Declared == "reuse_rate_with_vu" {
		return p.Indicators.ReuseRateWithVu
	}
	return p.Indicators.ReuseRate
}

func (p *Pack) checks(s *analytics.Site) {
	// 1. Reuse rate against the sector benchmark.
	c := Check{Key: CheckReuseRate}
	r := p.declaredRate()
	c.Value = PctPtr(r)
	switch b := p.Benchmark; {
	case b == nil:
		c.Target = "—"
		c.Detail = "no sector benchmark in the site file (indicators.benchmark)"
	default:
		c.Target = "> " + Pct(b.ReuseRate)
		c.Detail = fmt.Sprintf("%s %d, %s", b.Sector, b.Year, b.Source)
		c.Pass = r != nil && *r > b.ReuseRate
	}
	p.Checks = append(p.Checks, c)

	// 2. Equipping and metering rates per level.
	c = Check{Key: CheckMetering, Pass: true}
	var vals, targets, fails []string
	for _, lm := range p.Indicators.Metering {
		if lm.Required == 0 && lm.Installed == 0 && lm.TotalVolume == 0 {
			continue
		}
		vals = append(vals, fmt.Sprintf("L%d %s / %s", lm.Level, PctPtr(lm.EquippingRate), PctPtr(lm.Rate)))
		targets = append(targets, fmt.Sprintf("L%d ≥ %s / ≥ %s", lm.Level, PctPtr(lm.EquippingTarget), PctPtr(lm.RateTarget)))
		if lm.EquippingTarget != nil && (lm.EquippingRate == nil || *lm.EquippingRate < *lm.EquippingTarget-1e-12) {
			c.Pass = false
			fails = append(fails, fmt.Sprintf("L%d equipping", lm.Level))
		}
		if lm.RateTarget != nil && lm.TotalVolume > 0 && (lm.Rate == nil || *lm.Rate < *lm.RateTarget-1e-12) {
			c.Pass = false
			fails = append(fails, fmt.Sprintf("L%d metering", lm.Level))
		}
	}
	c.Value, c.Target, c.Detail = strings.Join(vals, "; "), strings.Join(targets, "; "), strings.Join(fails, ", ")
	p.Checks = append(p.Checks, c)

	// 3. Verification on every day of the period, for the meters behind the figures.
	c = Check{Key: CheckVerification, Pass: true}
	used := map[string]bool{}
	for _, f := range s.Flows {
		if f.Meter != "" {
			used[f.Meter] = true
		}
	}
	n, ok := 0, 0
	var bad []string
	for _, m := range p.Meters {
		if !used[m.ID] {
			continue
		}
		n++
		if m.UnverifiedDays == 0 {
			ok++
			continue
		}
		c.Pass = false
		bad = append(bad, m.ID+": "+strings.Join(m.Unverified, ", "))
	}
	c.Value, c.Target, c.Detail = fmt.Sprintf("%d/%d", ok, n), fmt.Sprintf("%d/%d", n, n), strings.Join(bad, "; ")
	p.Checks = append(p.Checks, c)

	// 4. Withdrawal within plan in each of the last three years.
	c = Check{Key: CheckPlans, Pass: true}
	var over, missing, thin []string
	worst := 0.0
	for _, y := range p.PlanYears {
		has := false
		for _, pr := range p.Plans {
			if pr.Year != y || pr.Planned == nil {
				continue
			}
			has = true
			if *pr.Planned > 0 {
				worst = max(worst, pr.Used / *pr.Planned)
			}
			if pr.Period == analytics.PeriodYear && pr.Source == "" && pr.Coverage < 1-1e-9 {
				thin = append(thin, fmt.Sprintf("%d: coverage %s", y, Pct(pr.Coverage)))
			}
			if pr.Over {
				over = append(over, fmt.Sprintf("%s: %s > %s", pr.Plan, Vol(pr.Used), Vol(*pr.Planned)))
			}
		}
		if !has {
			missing = append(missing, fmt.Sprintf("%d: no plan", y))
		}
	}
	if len(over) > 0 || len(missing) > 0 {
		c.Pass = false
	}
	c.Value = "max " + Pct(worst)
	c.Target = "≤ 100.00%"
	// Years only partly recorded are said, not failed: the platform may not have run then.
	c.Detail = strings.Join(append(append(over, missing...), thin...), "; ")
	p.Checks = append(p.Checks, c)
}
