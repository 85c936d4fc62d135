package alerting

import (
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/collector/config"
)

// Rule kinds. Each names what a rule looks at; docs/alerting.md describes their keys.
const (
	// Meter health.
	KindStale           = "stale"
	KindEdgeOffline     = "edge_offline"
	KindStuck           = "stuck"
	KindBadQuality      = "bad_quality"
	KindReverseSteps    = "reverse_steps"
	KindSpikes          = "spikes"
	KindResetUnrecorded = "reset_unrecorded"
	KindCoverage        = "coverage"
	// Leak.
	KindImbalance     = "imbalance"
	KindMeterFault    = "meter_fault"
	KindNodeResidual  = "node_residual"
	KindNightFlow     = "night_flow"
	KindParentFlowing = "parent_flowing"
	KindCUSUM         = "cusum"
	KindEWMA          = "ewma"
	KindBurst         = "burst"
	// Overuse.
	KindPlan             = "plan"
	KindPlanProjected    = "plan_projected"
	KindIntakePerProduct = "intake_per_product"
	KindDailyIntake      = "daily_intake"
	// Performance and compliance.
	KindReuseRate    = "reuse_rate"
	KindClosure      = "closure"
	KindVerification = "verification"
	KindMeteringRate = "metering_rate"
)

// kindInfo is what the loader knows of each kind: its family (a label on every alert) and the
// clock it runs on.
type kindInfo struct {
	family string // meter_health, leak, overuse, compliance
	// liveness kinds run on the platform's clock (processing time), the others on snapshots.
	liveness bool
}

var kinds = map[string]kindInfo{
	KindStale: {"meter_health", true}, KindEdgeOffline: {"meter_health", true}, KindStuck: {"meter_health", true},
	KindBadQuality: {"meter_health", true}, KindReverseSteps: {"meter_health", false}, KindSpikes: {"meter_health", false},
	KindResetUnrecorded: {"meter_health", false}, KindCoverage: {"meter_health", false},
	KindImbalance: {"leak", false}, KindMeterFault: {"meter_health", false}, KindNodeResidual: {"leak", false},
	KindNightFlow: {"leak", false}, KindParentFlowing: {"leak", false}, KindCUSUM: {"leak", false}, KindEWMA: {"leak", false},
	KindBurst: {"leak", false},
	KindPlan:  {"overuse", false}, KindPlanProjected: {"overuse", false}, KindIntakePerProduct: {"overuse", false},
	KindDailyIntake: {"overuse", false},
	KindReuseRate:   {"compliance", false}, KindClosure: {"compliance", false}, KindVerification: {"compliance", false},
	KindMeteringRate: {"compliance", false},
}

// Kinds lists every rule kind, sorted.
func Kinds() []string {
	out := make([]string, 0, len(kinds))
	for k := range kinds {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Severities, lowest first.
const (
	SeverityInfo     = "info"
	SeverityWarning  = "warning"
	SeverityCritical = "critical"
)

func validSeverity(s string) bool {
	return s == SeverityInfo || s == SeverityWarning || s == SeverityCritical
}

// RulesFile is one rules file: the platform's (no site) or one site's.
type RulesFile struct {
	// Site limits the file's rules to one site; empty applies them to every site.
	Site  string `yaml:"site"`
	Rules []Rule `yaml:"rules"`
	// Silences are standing silences (maintenance windows) declared with the rules.
	Silences []FileSilence `yaml:"silences"`

	sites []*analytics.Site // for validation; set by LoadRules
}

// FileSilence is a silence written in a rules file.
type FileSilence struct {
	Matchers []string  `yaml:"matchers"` // name="value", name!="value", name=~"re", name!~"re"
	StartsAt time.Time `yaml:"starts_at"`
	EndsAt   time.Time `yaml:"ends_at"`
	Author   string    `yaml:"author"`
	Comment  string    `yaml:"comment"`
}

// Runbook is what an operator does about a rule's alert, in both languages, with the valves that
// isolate the branches concerned.
type Runbook struct {
	EN      string    `yaml:"en" json:"en"`
	ZH      string    `yaml:"zh" json:"zh"`
	URL     string    `yaml:"url" json:"url,omitempty"`
	Isolate []Isolate `yaml:"isolate" json:"isolate,omitempty"`
}

// Isolate names the valve that isolates one branch.
type Isolate struct {
	Valve  string `yaml:"valve" json:"valve"`
	Branch string `yaml:"branch" json:"branch"`
	Note   string `yaml:"note" json:"note,omitempty"`
}

// Rule is one alerting rule. Kind decides which of the optional keys apply; Validate says which
// are required and refuses the ones a kind does not read.
type Rule struct {
	Name     string        `yaml:"name"`
	Kind     string        `yaml:"kind"`
	Severity string        `yaml:"severity"`
	For      time.Duration `yaml:"for"`
	// Disabled switches off a rule of the same name from the defaults or the platform file.
	Disabled bool `yaml:"disabled"`
	// Period is the calendar period a figure rule reads: hour, day, month or year.
	Period string `yaml:"period"`
	// Threshold fires the rule; Clear resolves it (hysteresis). Critical, when set, raises the
	// severity to critical beyond it.
	Threshold *float64 `yaml:"threshold"`
	Clear     *float64 `yaml:"clear"`
	Critical  *float64 `yaml:"critical"`
	// Meters limits a meter rule to these meters (default: every meter of the site); for cusum,
	// ewma, burst and night_flow it names the series' meter.
	Meters []string `yaml:"meters"`
	// Node is the unit node of node_residual, cusum and ewma on a node residual.
	Node string `yaml:"node"`
	// Level limits imbalance, meter_fault and metering_rate to one metering level.
	Level int `yaml:"level"`
	// Intervals is stale's N: reporting intervals without a reading (default 3).
	Intervals int `yaml:"intervals"`
	// Count and Window: reverse_steps, spikes and bad_quality fire on more than Count events in
	// Window; stuck fires after Count readings with Δ = 0 while flowing.
	Count  int           `yaml:"count"`
	Window time.Duration `yaml:"window"`
	// MinFlow is the flow (m³/h) that counts as flowing (stuck, parent_flowing, night_flow).
	MinFlow float64 `yaml:"min_flow"`
	// Fractions are plan's thresholds (default 0.8, 0.9, 1.0).
	Fractions []float64 `yaml:"fractions"`
	// MinCovered is the share of a plan's period that must be covered by data before plan and
	// plan_projected fire (default 0.1); MinCoverage the least data coverage of a figure.
	MinCovered  float64 `yaml:"min_covered"`
	MinCoverage float64 `yaml:"min_coverage"`
	// Series is what cusum and ewma watch, one value per closed hour: site_residual (Vl, m³/h),
	// site_leakage_rate (Vl / Vi), node_residual (with node, m³/h) or meter_flow (with one
	// meter, m³/h).
	Series string `yaml:"series"`
	// Detector parameters (DOMAIN.md): mu0 and sigma (learned from the first Baseline closed
	// hours when not given), k and h for CUSUM, lambda and l for EWMA.
	Mu0      *float64 `yaml:"mu0"`
	Sigma    *float64 `yaml:"sigma"`
	K        float64  `yaml:"k"`
	H        float64  `yaml:"h"`
	Lambda   float64  `yaml:"lambda"`
	L        float64  `yaml:"l"`
	Baseline int      `yaml:"baseline"`
	// General and Advanced are intake_per_product's quotas (通用值, 先进值), m³ per unit.
	General  *float64 `yaml:"general"`
	Advanced *float64 `yaml:"advanced"`
	// Days is verification's warning horizon (default 30).
	Days int `yaml:"days"`

	Summary   string            `yaml:"summary"`
	SummaryZH string            `yaml:"summary_zh"`
	Labels    map[string]string `yaml:"labels"`
	Runbook   Runbook           `yaml:"runbook"`
}

func f64(v float64) *float64 { return &v }

// Default fills a rule's keys left out with the kind's defaults.
func (r *Rule) Default() {
	if r.Severity == "" {
		r.Severity = SeverityWarning
		switch r.Kind {
		case KindVerification, KindMeteringRate, KindIntakePerProduct:
			r.Severity = SeverityInfo
		}
	}
	switch r.Kind {
	case KindStale:
		if r.Intervals == 0 {
			r.Intervals = 3
		}
	case KindStuck:
		if r.Count == 0 {
			r.Count = 5
		}
		if r.MinFlow == 0 {
			// Five minutes at 1 m³/h move a 0.01 m³ register several counts; below that a
			// healthy meter may show Δ = 0.
			r.MinFlow = 1
		}
	case KindBadQuality:
		if r.Count == 0 {
			r.Count = 3
		}
		if r.Window == 0 {
			r.Window = 15 * time.Minute
		}
	case KindReverseSteps, KindSpikes:
		if r.Count == 0 {
			r.Count = 3
		}
		if r.Window == 0 {
			r.Window = 24 * time.Hour
		}
	case KindResetUnrecorded:
		if r.Window == 0 {
			r.Window = 7 * 24 * time.Hour
		}
	case KindCoverage:
		r.defPeriod("hour")
		r.defThreshold(0.8, 0.9)
	case KindImbalance, KindMeterFault:
		r.defPeriod("day")
	case KindNodeResidual:
		r.defPeriod("day")
		r.defThreshold(0.1, 0.08)
	case KindNightFlow:
		r.defThreshold(1, 0.8)
	case KindParentFlowing:
		r.defPeriod("hour")
		if r.MinFlow == 0 {
			r.MinFlow = 0.5
		}
		r.defThreshold(0.02, 0.05)
	case KindCUSUM:
		if r.Baseline == 0 {
			r.Baseline = 24
		}
		if r.K == 0 {
			r.K = 0.5
		}
		if r.H == 0 {
			r.H = 5
		}
	case KindEWMA:
		if r.Baseline == 0 {
			r.Baseline = 24
		}
		if r.Lambda == 0 {
			r.Lambda = 0.2
		}
		if r.L == 0 {
			r.L = 3
		}
	case KindBurst:
		if r.Window == 0 {
			r.Window = 15 * time.Minute
		}
	case KindPlan:
		if len(r.Fractions) == 0 {
			r.Fractions = []float64{0.8, 0.9, 1.0}
		}
		if r.MinCovered == 0 {
			r.MinCovered = 0.1
		}
	case KindPlanProjected:
		if r.MinCovered == 0 {
			r.MinCovered = 0.1
		}
	case KindIntakePerProduct:
		r.defPeriod("month")
	case KindReuseRate:
		r.defPeriod("day")
		if r.MinCoverage == 0 {
			r.MinCoverage = 0.9
		}
	case KindClosure:
		r.defPeriod("day")
		if r.MinCoverage == 0 {
			r.MinCoverage = 0.9
		}
	case KindVerification:
		if r.Days == 0 {
			r.Days = 30
		}
	case KindMeteringRate:
		r.defPeriod("month")
	}
}

func (r *Rule) defPeriod(p string) {
	if r.Period == "" {
		r.Period = p
	}
}

func (r *Rule) defThreshold(fire, clear float64) {
	if r.Threshold == nil {
		r.Threshold = f64(fire)
	}
	if r.Clear == nil {
		r.Clear = f64(clear)
	}
}

// Default applies each rule's defaults.
func (f *RulesFile) Default() {
	for i := range f.Rules {
		f.Rules[i].Default()
	}
}

// Validate reports every problem of the file at its key path.
func (f *RulesFile) Validate(p *config.Problems) {
	var site *analytics.Site
	if f.Site != "" && f.sites != nil {
		i := slices.IndexFunc(f.sites, func(s *analytics.Site) bool { return s.ID == f.Site })
		if i < 0 {
			p.Addf("site", "unknown site %q (known: %s)", f.Site, siteIDs(f.sites))
		} else {
			site = f.sites[i]
		}
	}
	names := map[string]bool{}
	for i := range f.Rules {
		r := &f.Rules[i]
		path := fmt.Sprintf("rules[%d]", i)
		if r.Name == "" {
			p.Addf(path+".name", "a rule needs a name")
		} else if names[r.Name] {
			p.Addf(path+".name", "rule %q is defined twice in this file", r.Name)
		}
		names[r.Name] = true
		r.validate(p, path, site, f.sites)
	}
	for i, s := range f.Silences {
		path := fmt.Sprintf("silences[%d]", i)
		if len(s.Matchers) == 0 {
			p.Addf(path+".matchers", "a silence needs at least one matcher")
		}
		for j, m := range s.Matchers {
			if _, err := ParseMatcher(m); err != nil {
				p.Addf(fmt.Sprintf("%s.matchers[%d]", path, j), "%v", err)
			}
		}
		if !s.EndsAt.After(s.StartsAt) {
			p.Addf(path+".ends_at", "ends_at must be after starts_at")
		}
	}
}

func siteIDs(sites []*analytics.Site) string {
	ids := make([]string, len(sites))
	for i, s := range sites {
		ids[i] = s.ID
	}
	return strings.Join(ids, ", ")
}

// keys that each kind reads, beyond name, kind, severity, for, disabled, labels, summary, runbook.
var kindKeys = map[string][]string{
	KindStale: {"intervals", "meters"}, KindEdgeOffline: {}, KindStuck: {"count", "min_flow", "meters"},
	KindBadQuality: {"count", "window", "meters"}, KindReverseSteps: {"count", "window", "meters"},
	KindSpikes: {"count", "window", "meters"}, KindResetUnrecorded: {"window", "meters"},
	KindCoverage:  {"period", "threshold", "clear", "meters"},
	KindImbalance: {"period", "threshold", "clear", "critical", "level"}, KindMeterFault: {"period", "threshold", "clear", "level"},
	KindNodeResidual:  {"period", "threshold", "clear", "critical", "node"},
	KindNightFlow:     {"threshold", "clear", "meters"},
	KindParentFlowing: {"period", "threshold", "clear", "min_flow", "level"},
	KindCUSUM:         {"series", "node", "meters", "mu0", "sigma", "k", "h", "baseline"},
	KindEWMA:          {"series", "node", "meters", "mu0", "sigma", "lambda", "l", "baseline"},
	KindBurst:         {"threshold", "clear", "window", "meters"},
	KindPlan:          {"fractions", "min_covered"}, KindPlanProjected: {"min_covered"},
	KindIntakePerProduct: {"period", "general", "advanced"},
	KindDailyIntake:      {"threshold", "clear", "critical"},
	KindReuseRate:        {"period", "threshold", "clear", "min_coverage"},
	KindClosure:          {"period", "min_coverage"},
	KindVerification:     {"days", "meters"},
	KindMeteringRate:     {"period", "level"},
}

// set lists the optional keys a rule gave (after defaults, so defaulted keys count as set; the
// check only refuses keys the kind never reads).
func (r *Rule) set() []string {
	var s []string
	add := func(ok bool, k string) {
		if ok {
			s = append(s, k)
		}
	}
	add(r.Period != "", "period")
	add(r.Threshold != nil, "threshold")
	add(r.Clear != nil, "clear")
	add(r.Critical != nil, "critical")
	add(len(r.Meters) > 0, "meters")
	add(r.Node != "", "node")
	add(r.Level != 0, "level")
	add(r.Intervals != 0, "intervals")
	add(r.Count != 0, "count")
	add(r.Window != 0, "window")
	add(r.MinFlow != 0, "min_flow")
	add(len(r.Fractions) > 0, "fractions")
	add(r.MinCovered != 0, "min_covered")
	add(r.MinCoverage != 0, "min_coverage")
	add(r.Series != "", "series")
	add(r.Mu0 != nil, "mu0")
	add(r.Sigma != nil, "sigma")
	add(r.K != 0, "k")
	add(r.H != 0, "h")
	add(r.Lambda != 0, "lambda")
	add(r.L != 0, "l")
	add(r.Baseline != 0, "baseline")
	add(r.General != nil, "general")
	add(r.Advanced != nil, "advanced")
	add(r.Days != 0, "days")
	return s
}

func (r *Rule) validate(p *config.Problems, path string, site *analytics.Site, sites []*analytics.Site) {
	if _, ok := kinds[r.Kind]; !ok {
		p.Addf(path+".kind", "unknown rule kind %q (one of %s)", r.Kind, strings.Join(Kinds(), ", "))
		return
	}
	if !validSeverity(r.Severity) {
		p.Addf(path+".severity", "%q is not one of info, warning, critical", r.Severity)
	}
	if r.For < 0 {
		p.Addf(path+".for", "must not be negative")
	}
	allowed := kindKeys[r.Kind]
	for _, k := range r.set() {
		if !slices.Contains(allowed, k) {
			p.Addf(path+"."+k, "kind %s does not read %s (it reads: %s)", r.Kind, k, strings.Join(allowed, ", "))
		}
	}
	if r.Period != "" && !slices.Contains([]string{"hour", "day", "month", "year"}, r.Period) {
		p.Addf(path+".period", "%q is not one of hour, day, month, year", r.Period)
	}
	if r.Threshold != nil && r.Clear != nil {
		// A rule firing above its threshold clears below a lower value; one firing below (coverage,
		// reuse rate, parent_flowing's children share) clears above a higher one.
		below := r.Kind == KindCoverage || r.Kind == KindReuseRate || r.Kind == KindParentFlowing
		if below && *r.Clear < *r.Threshold || !below && *r.Clear > *r.Threshold {
			dir := "at or below"
			if below {
				dir = "at or above"
			}
			p.Addf(path+".clear", "clear (%g) must be %s threshold (%g) so the alert cannot flap", *r.Clear, dir, *r.Threshold)
		}
	}
	for i, m := range r.Meters {
		if !meterKnown(m, site, sites) {
			p.Addf(fmt.Sprintf("%s.meters[%d]", path, i), "unknown meter %q", m)
		}
	}
	if r.Node != "" && sites != nil && !nodeKnown(r.Node, site, sites) {
		p.Addf(path+".node", "unknown node %q", r.Node)
	}
	for i, fr := range r.Fractions {
		if !(fr > 0 && fr <= 2) {
			p.Addf(fmt.Sprintf("%s.fractions[%d]", path, i), "%g is not a fraction of the plan (0.8 is 80 %%)", fr)
		}
	}
	switch r.Kind {
	case KindDailyIntake:
		if r.Threshold == nil {
			p.Addf(path+".threshold", "daily_intake needs threshold: the daily limit in m³")
		}
	case KindIntakePerProduct:
		if r.General == nil && r.Advanced == nil {
			p.Addf(path+".general", "intake_per_product needs general (通用值) or advanced (先进值), m³ per unit of product")
		}
	case KindCUSUM, KindEWMA:
		switch r.Series {
		case "site_residual", "site_leakage_rate":
		case "node_residual":
			if r.Node == "" {
				p.Addf(path+".node", "series node_residual needs node")
			}
		case "meter_flow":
			if len(r.Meters) != 1 {
				p.Addf(path+".meters", "series meter_flow needs exactly one meter")
			}
		default:
			p.Addf(path+".series", "%q is not one of site_residual, site_leakage_rate, node_residual, meter_flow", r.Series)
		}
		if r.Sigma != nil && !(*r.Sigma > 0) {
			p.Addf(path+".sigma", "must be positive")
		}
		if r.Kind == KindEWMA && !(r.Lambda > 0 && r.Lambda <= 1) {
			p.Addf(path+".lambda", "must be in (0, 1]")
		}
		if r.Baseline < 2 {
			p.Addf(path+".baseline", "needs at least 2 hours to learn mu0 and sigma")
		}
	case KindBurst, KindNightFlow:
		if r.Kind == KindBurst && r.Threshold == nil {
			p.Addf(path+".threshold", "burst needs threshold: the step in m³/h that counts as a burst")
		}
		if len(r.Meters) == 0 {
			p.Addf(path+".meters", "%s needs the meters of the branches it watches", r.Kind)
		}
	}
	for k := range r.Labels {
		if !labelName(k) {
			p.Addf(path+".labels."+k, "%q is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)", k)
		}
		if reserved[k] {
			p.Addf(path+".labels."+k, "label %s is set by the rule itself", k)
		}
	}
}

var reserved = map[string]bool{"alertname": true, "site": true, "severity": true, "rule": true}

func meterKnown(id string, site *analytics.Site, sites []*analytics.Site) bool {
	if sites == nil {
		return true // checked without site models
	}
	if site != nil {
		_, ok := site.Meter(id)
		return ok
	}
	for _, s := range sites {
		if _, ok := s.Meter(id); ok {
			return true
		}
	}
	return false
}

func nodeKnown(id string, site *analytics.Site, sites []*analytics.Site) bool {
	if site != nil {
		_, ok := site.Node(id)
		return ok
	}
	for _, s := range sites {
		if _, ok := s.Node(id); ok {
			return true
		}
	}
	return false
}

// LoadRules reads and validates a rules file against the site models (nil sites skips the
// checks of meters, nodes and the site, as `aqualoop check` does on a lone rules file).
func LoadRules(path string, sites []*analytics.Site) (*RulesFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read rules file: %w", err)
	}
	return ParseRules(path, data, sites)
}

// ParseRules is LoadRules for a file already read; name is used in messages.
func ParseRules(name string, data []byte, sites []*analytics.Site) (*RulesFile, error) {
	f := &RulesFile{sites: sites}
	if err := config.Parse(name, data, f); err != nil {
		return nil, err
	}
	return f, nil
}
