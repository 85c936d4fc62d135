package sim

import (
	"fmt"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aqualoop/aqualoop/collector/config"
	"github.com/aqualoop/aqualoop/collector/wire"
)

// Protocols a simulated meter can be served over.
const (
	ProtocolModbus = "modbus"
	ProtocolOPCUA  = "opcua"
)

// Security policies the OPC UA server can offer.
const (
	PolicyNone           = "None"
	PolicyBasic256Sha256 = "Basic256Sha256"
)

// Register layout of a Modbus meter.
const (
	// TotalResolution is the value of one count of a Modbus UINT32 totalizer, in m³.
	TotalResolution = 0.01
	// ModbusRegisterMax is where a UINT32 totalizer at TotalResolution wraps: 2³² × 0.01 m³.
	ModbusRegisterMax = (1 << 32) * TotalResolution
	// DefaultOPCUARegisterMax is where an OPC UA totalizer wraps unless its meter says otherwise.
	DefaultOPCUARegisterMax = 1e8
)

// Config is the simulator's plant.yaml: the clock, the listeners, the parameters of the water
// network and how each meter is served.
type Config struct {
	// Site is the site id the simulated plant stands for.
	Site string `yaml:"site"`
	// Timezone decides where the simulated day begins, and so the shape of every profile.
	Timezone string `yaml:"timezone"`
	// TimeScale is how many simulated seconds pass per wall-clock second.
	TimeScale float64 `yaml:"time_scale"`
	// Start is the simulated time at New, RFC3339 (or a local time in Timezone without offset).
	// Empty means the wall clock at New, truncated to the minute.
	Start string `yaml:"start"`
	// UpdateInterval is how often (wall clock) the OPC UA variables are recomputed and notified.
	UpdateInterval time.Duration `yaml:"update_interval"`
	// Noise is the relative standard deviation of the Gaussian noise on served flow rates
	// (default 0.005; 0 serves the true flow).
	Noise *float64 `yaml:"noise"`
	// Seed makes the noise reproducible.
	Seed uint64 `yaml:"seed"`
	// Leak is the loss from the municipal distribution main, in m³/h (default 1).
	Leak *float64 `yaml:"leak"`

	Modbus   ModbusConfig   `yaml:"modbus"`
	OPCUA    OPCUAConfig    `yaml:"opcua"`
	Profiles ProfilesConfig `yaml:"profiles"`
	Network  NetworkConfig  `yaml:"network"`
	Cooling  CoolingConfig  `yaml:"cooling"`
	// Meters overrides how individual meters are served; meters not listed keep their defaults.
	Meters []MeterConfig `yaml:"meters"`
	// Faults are injected on a schedule (see FaultConfig); more can be posted at run time.
	Faults []FaultConfig `yaml:"faults"`
}

// ModbusConfig is the Modbus TCP server, one gateway for every Modbus meter.
type ModbusConfig struct {
	Listen string `yaml:"listen"` // host:port; port 0 picks a free one
}

// OPCUAConfig is the OPC UA server.
type OPCUAConfig struct {
	Listen       string `yaml:"listen"` // host:port; port 0 picks a free one
	NamespaceURI string `yaml:"namespace_uri"`
	// SecurityPolicies are the endpoints offered: None, and Basic256Sha256 (Sign and
	// SignAndEncrypt). Anonymous authentication only.
	SecurityPolicies []string `yaml:"security_policies"`
	// Certificate and PrivateKey are PEM files for the Basic256Sha256 endpoints. When both are
	// empty a self-signed certificate is generated at each start.
	Certificate string `yaml:"certificate"`
	PrivateKey  string `yaml:"private_key"`
}

// ProfilesConfig shapes the daily variation of the flows.
type ProfilesConfig struct {
	Process WaveConfig   `yaml:"process"` // p(t)
	Cooling WaveConfig   `yaml:"cooling"` // pc(t)
	Office  OfficeConfig `yaml:"office"`  // po(t)
}

// WaveConfig is a smooth daily profile (a cosine) between Min at night and Max at PeakHour.
type WaveConfig struct {
	Min      float64 `yaml:"min"`
	Max      float64 `yaml:"max"`
	PeakHour float64 `yaml:"peak_hour"`
}

// OfficeConfig is a working-hours profile: High from StartHour to EndHour, Low otherwise, with
// smooth ramps of length Ramp centred on both hours.
type OfficeConfig struct {
	Low       float64       `yaml:"low"`
	High      float64       `yaml:"high"`
	StartHour float64       `yaml:"start_hour"`
	EndHour   float64       `yaml:"end_hour"`
	Ramp      time.Duration `yaml:"ramp"`
}

// NetworkConfig holds the base rates (m³/h at profile 1; steam in t/h) and the fractions that
// define the process side of the network.
type NetworkConfig struct {
	WS1Supply        float64 `yaml:"ws1_supply"`        // M04 = ws1_supply · p
	Steam            float64 `yaml:"steam"`             // D = steam · p
	CondensateReturn float64 `yaml:"condensate_return"` // M14 = condensate_return · D
	BoilerBlowdown   float64 `yaml:"boiler_blowdown"`   // blowdown = boiler_blowdown · D
	Cascade          float64 `yaml:"cascade"`           // M06 = cascade · M04
	Office           float64 `yaml:"office"`            // office = office · po
	WS2Well          float64 `yaml:"ws2_well"`          // M07 = ws2_well · p
	WS2Consumption   float64 `yaml:"ws2_consumption"`   // share of ws2's intake that goes into product
	ReuseRecovery    float64 `yaml:"reuse_recovery"`    // M09 = reuse_recovery · M08
	ReclaimedShare   float64 `yaml:"reclaimed_share"`   // M03 = reclaimed_share · cooling make-up
}

// CoolingConfig is the indirect cooling loop (DOMAIN.md, cooling towers).
type CoolingConfig struct {
	Circulating float64 `yaml:"circulating"` // M12 = circulating · pc, m³/h
	K           float64 `yaml:"k"`           // evaporation factor, 1/°C
	DeltaT      float64 `yaml:"delta_t"`     // °C
	Cycles      float64 `yaml:"cycles"`      // cycles of concentration N > 1
}

// MeterConfig is how one meter is served. Zero values mean the meter's default.
type MeterConfig struct {
	ID       string `yaml:"id"`
	Protocol string `yaml:"protocol"` // modbus or opcua
	// SlaveID is the Modbus unit id behind the gateway.
	SlaveID int `yaml:"slave_id"`
	// FlowRegister is the first of two registers holding the flow rate (FLOAT32, CDAB), default 0.
	FlowRegister *int `yaml:"flow_register"`
	// TotalRegister is the first of two registers holding the totalizer (UINT32, ABCD, 0.01 m³),
	// default 2.
	TotalRegister *int `yaml:"total_register"`
	// RegisterMax is where the totalizer wraps to zero, in m³. Modbus default 2³² × 0.01 m³,
	// OPC UA default 1e8 m³.
	RegisterMax float64 `yaml:"register_max"`
	// InitialTotal is the totalizer reading at the simulated start, in m³.
	InitialTotal float64 `yaml:"initial_total"`
	// Bias is the meter's relative error: its totalizer integrates true flow × (1 + bias).
	Bias float64 `yaml:"bias"`
}

var (
	_ config.Defaulter = (*Config)(nil)
	_ config.Validator = (*Config)(nil)
)

// LoadConfig reads and validates a plant.yaml. The file is decoded onto DefaultConfig, so a key
// it leaves out keeps its default and an explicit 0 stays 0.
func LoadConfig(path string) (*Config, error) {
	c := DefaultConfig()
	if err := config.Load(path, c); err != nil {
		return nil, err
	}
	return c, nil
}

// DefaultConfig is the demo plant of the docs, with every default in place.
func DefaultConfig() *Config {
	c := &Config{}
	c.Default()
	return c
}

func ptr[T any](v T) *T { return &v }

// Default fills what was left at its zero value: settings that cannot be zero, Noise and Leak
// when unset, and whole parameter groups (a profile, network, cooling) that are entirely absent.
// A field that may legitimately be 0 inside a group that is present stays 0: LoadConfig decodes
// onto DefaultConfig so that a file's partial groups keep the other defaults.
func (c *Config) Default() {
	setString := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	setFloat := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	setString(&c.Site, "demo")
	setString(&c.Timezone, "Asia/Shanghai")
	setFloat(&c.TimeScale, 1)
	if c.UpdateInterval == 0 {
		c.UpdateInterval = 250 * time.Millisecond
	}
	if c.Noise == nil {
		c.Noise = ptr(0.005)
	}
	if c.Leak == nil {
		c.Leak = ptr(1.0)
	}
	setString(&c.Modbus.Listen, "127.0.0.1:5020")
	setString(&c.OPCUA.Listen, "127.0.0.1:4840")
	setString(&c.OPCUA.NamespaceURI, "urn:aqualoop:sim")
	if len(c.OPCUA.SecurityPolicies) == 0 {
		c.OPCUA.SecurityPolicies = []string{PolicyNone}
	}
	if c.Profiles.Process == (WaveConfig{}) {
		c.Profiles.Process = WaveConfig{Min: 0.6, Max: 1.2, PeakHour: 14}
	}
	if c.Profiles.Cooling == (WaveConfig{}) {
		c.Profiles.Cooling = WaveConfig{Min: 0.85, Max: 1.1, PeakHour: 15}
	}
	if c.Profiles.Office == (OfficeConfig{}) {
		c.Profiles.Office = OfficeConfig{Low: 0.2, High: 1, StartHour: 8, EndHour: 18}
	}
	if c.Profiles.Office.Ramp == 0 {
		c.Profiles.Office.Ramp = time.Hour
	}
	if c.Network == (NetworkConfig{}) {
		c.Network = NetworkConfig{
			WS1Supply:        40,
			Steam:            10,
			CondensateReturn: 0.7,
			BoilerBlowdown:   0.05,
			Cascade:          0.8,
			Office:           3,
			WS2Well:          20,
			WS2Consumption:   0.15,
			ReuseRecovery:    0.75,
			ReclaimedShare:   0.2,
		}
	}
	if c.Cooling == (CoolingConfig{}) {
		c.Cooling.Circulating = 5000
	}
	setFloat(&c.Cooling.K, 0.0014)
	setFloat(&c.Cooling.DeltaT, 8)
	setFloat(&c.Cooling.Cycles, 4)
}

func deref(v *float64) any {
	if v == nil {
		return "unset"
	}
	return *v
}

// problem is one validation finding, kept apart from config.Problems so that New can report the
// same findings for a Config built in code.
type problem struct{ path, msg string }

type problemList []problem

func (l *problemList) addf(path, format string, args ...any) {
	*l = append(*l, problem{path, fmt.Sprintf(format, args...)})
}

// Validate reports every problem of the configuration with its key path.
func (c *Config) Validate(p *config.Problems) {
	for _, pr := range c.problems() {
		p.Addf(pr.path, "%s", pr.msg)
	}
}

// err turns the findings into one error for callers that did not come through LoadConfig.
func (l problemList) err() error {
	if len(l) == 0 {
		return nil
	}
	msgs := make([]string, len(l))
	for i, pr := range l {
		msgs[i] = pr.path + ": " + pr.msg
	}
	return fmt.Errorf("invalid plant config: %s", strings.Join(msgs, "; "))
}

func (c *Config) problems() problemList {
	var l problemList
	if !wire.ValidID(c.Site) {
		l.addf("site", "%q is not a valid site id (letters, digits, '-', '_', '.')", c.Site)
	}
	loc, err := time.LoadLocation(c.Timezone)
	if err != nil || c.Timezone == "" {
		l.addf("timezone", "%q is not a known time zone", c.Timezone)
		loc = nil
	}
	if !(c.TimeScale > 0 && c.TimeScale <= 1e6) {
		l.addf("time_scale", "%v must be above 0 and at most 1e6", c.TimeScale)
	}
	if c.Start != "" && loc != nil {
		if _, err := parseStart(c.Start, loc); err != nil {
			l.addf("start", "%v", err)
		}
	}
	if c.UpdateInterval < 10*time.Millisecond {
		l.addf("update_interval", "%v is below the 10ms minimum", c.UpdateInterval)
	}
	if c.Noise == nil || !(*c.Noise >= 0 && *c.Noise <= 0.2) {
		l.addf("noise", "%v is not a relative deviation between 0 and 0.2", deref(c.Noise))
	}
	if c.Leak == nil || !(*c.Leak >= 0) || math.IsInf(*c.Leak, 0) {
		l.addf("leak", "%v m³/h must be finite and not negative", deref(c.Leak))
	}
	c.Modbus.validate(&l, "modbus")
	c.OPCUA.validate(&l, "opcua")
	c.Profiles.validate(&l, "profiles")
	c.Network.validate(&l, "network")
	c.Cooling.validate(&l, "cooling")
	c.validateMeters(&l)
	if len(l) == 0 && loc != nil {
		// The parameters are each sane; check that together they give a feasible network.
		if err := checkNonNegative(buildNetwork(c), newProfiles(c, loc), c.startOrNow(loc, time.Now())); err != nil {
			l.addf("network", "%v", err)
		}
	}
	if len(l) == 0 {
		c.faultsProblems(&l)
	}
	return l
}

func (c *ModbusConfig) validate(l *problemList, path string) {
	validateListen(l, path+".listen", c.Listen)
}

func (c *OPCUAConfig) validate(l *problemList, path string) {
	validateListen(l, path+".listen", c.Listen)
	if c.NamespaceURI == "" {
		l.addf(path+".namespace_uri", "is required")
	}
	if len(c.SecurityPolicies) == 0 {
		l.addf(path+".security_policies", "needs at least one of %s, %s", PolicyNone, PolicyBasic256Sha256)
	}
	for i, sp := range c.SecurityPolicies {
		if sp != PolicyNone && sp != PolicyBasic256Sha256 {
			l.addf(fmt.Sprintf("%s.security_policies[%d]", path, i), "%q is not one of %s, %s", sp, PolicyNone, PolicyBasic256Sha256)
		}
	}
	if (c.Certificate == "") != (c.PrivateKey == "") {
		l.addf(path, "certificate and private_key go together: give both or neither")
	}
}

func validateListen(l *problemList, path, addr string) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		l.addf(path, "%q is not host:port: %v", addr, err)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		l.addf(path, "port %q is not a number between 0 and 65535", port)
	}
}

func (c *ProfilesConfig) validate(l *problemList, path string) {
	c.Process.validate(l, path+".process")
	c.Cooling.validate(l, path+".cooling")
	c.Office.validate(l, path+".office")
}

func (c *WaveConfig) validate(l *problemList, path string) {
	if !(c.Min >= 0) {
		l.addf(path+".min", "%v must not be negative", c.Min)
	}
	if !(c.Max >= c.Min) || math.IsInf(c.Max, 0) {
		l.addf(path+".max", "%v must be finite and at least min (%v)", c.Max, c.Min)
	}
	if !(c.PeakHour >= 0 && c.PeakHour < 24) {
		l.addf(path+".peak_hour", "%v is not an hour of the day (0 to 24)", c.PeakHour)
	}
}

func (c *OfficeConfig) validate(l *problemList, path string) {
	if !(c.Low >= 0) {
		l.addf(path+".low", "%v must not be negative", c.Low)
	}
	if !(c.High >= c.Low) || math.IsInf(c.High, 0) {
		l.addf(path+".high", "%v must be finite and at least low (%v)", c.High, c.Low)
	}
	ramp := c.Ramp.Hours()
	if c.Ramp <= 0 {
		l.addf(path+".ramp", "%v must be positive", c.Ramp)
	}
	if !(c.StartHour-ramp/2 >= 0) {
		l.addf(path+".start_hour", "%v minus half the ramp must not fall before midnight", c.StartHour)
	}
	if !(c.EndHour > c.StartHour) {
		l.addf(path+".end_hour", "%v must be after start_hour (%v)", c.EndHour, c.StartHour)
	}
	if !(c.EndHour+ramp/2 <= 24) {
		l.addf(path+".end_hour", "%v plus half the ramp must end by midnight", c.EndHour)
	}
}

func (c *NetworkConfig) validate(l *problemList, path string) {
	rates := []struct {
		key string
		v   float64
	}{{"ws1_supply", c.WS1Supply}, {"steam", c.Steam}, {"office", c.Office}, {"ws2_well", c.WS2Well}}
	for _, r := range rates {
		if !(r.v >= 0) || math.IsInf(r.v, 0) {
			l.addf(path+"."+r.key, "%v m³/h must be finite and not negative", r.v)
		}
	}
	fractions := []struct {
		key string
		v   float64
	}{
		{"condensate_return", c.CondensateReturn}, {"boiler_blowdown", c.BoilerBlowdown},
		{"cascade", c.Cascade}, {"ws2_consumption", c.WS2Consumption},
		{"reuse_recovery", c.ReuseRecovery}, {"reclaimed_share", c.ReclaimedShare},
	}
	for _, f := range fractions {
		if !(f.v >= 0 && f.v <= 1) {
			l.addf(path+"."+f.key, "%v is not a fraction between 0 and 1", f.v)
		}
	}
}

func (c *CoolingConfig) validate(l *problemList, path string) {
	if !(c.Circulating >= 0) || math.IsInf(c.Circulating, 0) {
		l.addf(path+".circulating", "%v m³/h must be finite and not negative", c.Circulating)
	}
	if !(c.K > 0 && c.K < 0.01) {
		l.addf(path+".k", "%v is not an evaporation factor between 0 and 0.01 per °C", c.K)
	}
	if !(c.DeltaT > 0 && c.DeltaT < 50) {
		l.addf(path+".delta_t", "%v is not a temperature drop between 0 and 50 °C", c.DeltaT)
	}
	if !(c.Cycles > 1 && c.Cycles < 100) {
		l.addf(path+".cycles", "%v cycles of concentration must be above 1 (and below 100)", c.Cycles)
	}
}

func (c *Config) validateMeters(l *problemList) {
	known := defaultMeters()
	seen := map[string]bool{}
	for i, m := range c.Meters {
		path := fmt.Sprintf("meters[%d]", i)
		if !slices.ContainsFunc(known, func(k MeterConfig) bool { return k.ID == m.ID }) {
			l.addf(path+".id", "%q is not a meter of the plant (%s)", m.ID, meterIDs(known))
		} else if seen[m.ID] {
			l.addf(path+".id", "meter %q is listed twice", m.ID)
		}
		seen[m.ID] = true
		if m.Protocol != "" && m.Protocol != ProtocolModbus && m.Protocol != ProtocolOPCUA {
			l.addf(path+".protocol", "%q is not one of %s, %s", m.Protocol, ProtocolModbus, ProtocolOPCUA)
		}
		if !(m.Bias > -0.5 && m.Bias < 0.5) {
			l.addf(path+".bias", "%v is not a relative error between -0.5 and 0.5", m.Bias)
		}
		if !(m.RegisterMax >= 0) || math.IsInf(m.RegisterMax, 0) {
			l.addf(path+".register_max", "%v m³ must be finite and positive", m.RegisterMax)
		}
		if !(m.InitialTotal >= 0) {
			l.addf(path+".initial_total", "%v m³ must not be negative", m.InitialTotal)
		}
	}
	// Check the resolved meters (defaults merged), naming the listed entry when there is one.
	// Unlisted meters go first, so a clash with a default unit id is reported on the entry that
	// caused it.
	specs := c.meterSpecs()
	listedAt := func(id string) int { return slices.IndexFunc(c.Meters, func(x MeterConfig) bool { return x.ID == id }) }
	slices.SortStableFunc(specs, func(a, b MeterConfig) int { return listedAt(a.ID) - listedAt(b.ID) })
	units := map[int]string{}
	for _, m := range specs {
		path := "meters"
		if i := listedAt(m.ID); i >= 0 {
			path = fmt.Sprintf("meters[%d]", i)
			if m.Protocol != ProtocolModbus && c.Meters[i].SlaveID != 0 {
				l.addf(path+".slave_id", "applies to modbus meters only, and %s is served over %s", m.ID, m.Protocol)
			}
		}
		if m.InitialTotal >= m.RegisterMax && m.RegisterMax > 0 {
			l.addf(path+".initial_total", "%v m³ is not below register_max (%v m³)", m.InitialTotal, m.RegisterMax)
		}
		if m.Protocol != ProtocolModbus {
			continue
		}
		if m.RegisterMax > ModbusRegisterMax {
			l.addf(path+".register_max", "%v m³ does not fit a UINT32 totalizer at 0.01 m³ (at most %.2f)", m.RegisterMax, ModbusRegisterMax)
		}
		if m.SlaveID < 1 || m.SlaveID > 247 {
			l.addf(path+".slave_id", "%d is not a Modbus unit id (1 to 247)", m.SlaveID)
		} else if other, dup := units[m.SlaveID]; dup {
			l.addf(path+".slave_id", "%d is already the unit id of %s", m.SlaveID, other)
		}
		units[m.SlaveID] = m.ID
		fr, tr := *m.FlowRegister, *m.TotalRegister
		for _, r := range []struct {
			key string
			v   int
		}{{"flow_register", fr}, {"total_register", tr}} {
			if r.v < 0 || r.v > 0xfffe {
				l.addf(path+"."+r.key, "%d is not a register address for two registers (0 to 65534)", r.v)
			}
		}
		if fr < tr+2 && tr < fr+2 {
			l.addf(path+".total_register", "registers %d..%d overlap the flow rate's %d..%d", tr, tr+1, fr, fr+1)
		}
	}
}

func meterIDs(ms []MeterConfig) string {
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	return strings.Join(ids, ", ")
}

// meterSpecs returns every meter of the plant with the listed overrides applied.
func (c *Config) meterSpecs() []MeterConfig {
	specs := defaultMeters()
	for i := range specs {
		d := &specs[i]
		if j := slices.IndexFunc(c.Meters, func(m MeterConfig) bool { return m.ID == d.ID }); j >= 0 {
			o := c.Meters[j]
			if o.Protocol != "" {
				d.Protocol = o.Protocol
			}
			if o.SlaveID != 0 {
				d.SlaveID = o.SlaveID
			}
			if o.FlowRegister != nil {
				d.FlowRegister = o.FlowRegister
			}
			if o.TotalRegister != nil {
				d.TotalRegister = o.TotalRegister
			}
			d.RegisterMax = o.RegisterMax
			d.InitialTotal = o.InitialTotal
			d.Bias = o.Bias
		}
		if d.RegisterMax == 0 {
			d.RegisterMax = DefaultOPCUARegisterMax
			if d.Protocol == ProtocolModbus {
				d.RegisterMax = ModbusRegisterMax
			}
		}
		if d.Protocol != ProtocolModbus {
			d.SlaveID = 0
		}
	}
	return specs
}

// defaultMeters is the demo plant's meter register: Modbus meters are units 1 to 16 behind one
// gateway (unit id = meter number), the others are OPC UA variables.
func defaultMeters() []MeterConfig {
	modbus := []string{"M01", "M02", "M03", "M04", "M05", "M07", "M10", "M11", "M16"}
	ids := []string{"M01", "M02", "M03", "M04", "M05", "M06", "M07", "M08", "M09", "M10", "M11", "M12", "M13", "M14", "M15", "M16"}
	ms := make([]MeterConfig, len(ids))
	for i, id := range ids {
		flowReg, totalReg := 0, 2
		ms[i] = MeterConfig{ID: id, Protocol: ProtocolOPCUA, FlowRegister: &flowReg, TotalRegister: &totalReg}
		if slices.Contains(modbus, id) {
			n, _ := strconv.Atoi(id[1:])
			ms[i].Protocol = ProtocolModbus
			ms[i].SlaveID = n
		}
	}
	return ms
}

// parseStart reads the start time as RFC3339, or as a local time in loc without offset.
func parseStart(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	t, err := time.ParseInLocation("2006-01-02T15:04:05", s, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not an RFC3339 time (2025-01-06T00:00:00+08:00) nor a local time (2025-01-06T00:00:00)", s)
	}
	return t, nil
}

// startOrNow is the configured start, or now truncated to the minute.
func (c *Config) startOrNow(loc *time.Location, now time.Time) time.Time {
	if c.Start != "" {
		if t, err := parseStart(c.Start, loc); err == nil {
			return t
		}
	}
	return now.Truncate(time.Minute)
}
