package sim

import (
	"math"
	"time"
)

// Every flow of the plant is a linear combination of four basis functions of local time: the
// constant 1, the process profile p, the cooling profile pc and the office profile po. Each has a
// closed-form integral, so volumes are exact and reading a totalizer costs a few sin calls, with no
// state that depends on how often anyone asked.
const (
	basisOne = iota
	basisProcess
	basisCooling
	basisOffice
	basisLen
)

// lin is a flow rate as coefficients of the basis functions, in m³/h.
type lin [basisLen]float64

func (a lin) add(b lin) lin {
	for i := range a {
		a[i] += b[i]
	}
	return a
}

func (a lin) sub(b lin) lin {
	for i := range a {
		a[i] -= b[i]
	}
	return a
}

func (a lin) mul(k float64) lin {
	for i := range a {
		a[i] *= k
	}
	return a
}

// dot evaluates a at basis values (rates) or basis integrals (volumes).
func (a lin) dot(b [basisLen]float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

const secondsPerDay = 86400

// wave is a cosine daily profile, at its maximum at peak (hours of the day).
type wave struct{ mid, amp, peak float64 }

func newWave(c WaveConfig) wave {
	return wave{mid: (c.Min + c.Max) / 2, amp: (c.Max - c.Min) / 2, peak: c.PeakHour}
}

func (w wave) phase(sec float64) float64 { return 2 * math.Pi * (sec/secondsPerDay - w.peak/24) }

func (w wave) at(sec float64) float64 { return w.mid + w.amp*math.Cos(w.phase(sec)) }

// integral over local times a..b, in profile·hours.
func (w wave) integral(a, b localTime) float64 {
	span := b.since(a)
	return (w.mid*span + w.amp*secondsPerDay/(2*math.Pi)*(math.Sin(w.phase(b.sec))-math.Sin(w.phase(a.sec)))) / 3600
}

// office is low outside working hours and high inside, with smoothstep ramps centred on the start
// and end hours. Validation keeps both ramps inside the day, so the profile is low at midnight
// and its day integral is the same every day.
type office struct{ low, high, start, end, ramp float64 } // hours

func newOffice(c OfficeConfig) office {
	return office{low: c.Low, high: c.High, start: c.StartHour, end: c.EndHour, ramp: c.Ramp.Hours()}
}

func smoothstep(x float64) float64 {
	switch {
	case x <= 0:
		return 0
	case x >= 1:
		return 1
	}
	return x * x * (3 - 2*x)
}

// smoothstepIntegral is ∫₀ˣ smoothstep.
func smoothstepIntegral(x float64) float64 {
	switch {
	case x <= 0:
		return 0
	case x >= 1:
		return 0.5 + (x - 1)
	}
	return x*x*x - x*x*x*x/2
}

func (o office) at(sec float64) float64 {
	h := sec / 3600
	return o.low + (o.high-o.low)*(smoothstep((h-o.start)/o.ramp+0.5)-smoothstep((h-o.end)/o.ramp+0.5))
}

// dayIntegral is ∫ from midnight to sec seconds into the day, in profile·hours.
func (o office) dayIntegral(sec float64) float64 {
	h := sec / 3600
	return o.low*h + (o.high-o.low)*o.ramp*(smoothstepIntegral((h-o.start)/o.ramp+0.5)-smoothstepIntegral((h-o.end)/o.ramp+0.5))
}

func (o office) integral(a, b localTime) float64 {
	full := o.dayIntegral(secondsPerDay)
	return float64(b.day-a.day)*full + o.dayIntegral(b.sec) - o.dayIntegral(a.sec)
}

// localTime is an instant as a local day number and seconds into that day, which keeps the
// precision of nanoseconds for any date (a float of seconds since 1970 would not).
type localTime struct {
	day int64
	sec float64
}

func toLocal(t time.Time, offset int) localTime {
	s := t.Unix() + int64(offset)
	day := s / secondsPerDay
	rem := s % secondsPerDay
	if rem < 0 {
		day--
		rem += secondsPerDay
	}
	return localTime{day: day, sec: float64(rem) + float64(t.Nanosecond())/1e9}
}

// since is a − b in seconds.
func (a localTime) since(b localTime) float64 {
	return float64(a.day-b.day)*secondsPerDay + (a.sec - b.sec)
}

// profiles evaluates and integrates the basis functions in the site's time zone.
type profiles struct {
	loc     *time.Location
	process wave
	cooling wave
	office  office
}

func newProfiles(c *Config, loc *time.Location) *profiles {
	return &profiles{
		loc:     loc,
		process: newWave(c.Profiles.Process),
		cooling: newWave(c.Profiles.Cooling),
		office:  newOffice(c.Profiles.Office),
	}
}

// at returns the basis values at t.
func (pr *profiles) at(t time.Time) [basisLen]float64 {
	_, off := t.In(pr.loc).Zone()
	sec := toLocal(t, off).sec
	return [basisLen]float64{1, pr.process.at(sec), pr.cooling.at(sec), pr.office.at(sec)}
}

// integral returns ∫ basis dt over [a, b] in hours (so a lin dotted with it is m³); negative when
// b is before a. The interval is split where the zone's offset changes (daylight saving), since
// the profiles follow the local clock.
func (pr *profiles) integral(a, b time.Time) [basisLen]float64 {
	if b.Before(a) {
		r := pr.integral(b, a)
		for i := range r {
			r[i] = -r[i]
		}
		return r
	}
	var sum [basisLen]float64
	for a.Before(b) {
		la := a.In(pr.loc)
		_, off := la.Zone()
		_, zoneEnd := la.ZoneBounds()
		end := b
		if !zoneEnd.IsZero() && zoneEnd.After(a) && zoneEnd.Before(b) {
			end = zoneEnd
		}
		x, y := toLocal(a, off), toLocal(end, off)
		sum[basisOne] += y.since(x) / 3600
		sum[basisProcess] += pr.process.integral(x, y)
		sum[basisCooling] += pr.cooling.integral(x, y)
		sum[basisOffice] += pr.office.integral(x, y)
		a = end
	}
	return sum
}
