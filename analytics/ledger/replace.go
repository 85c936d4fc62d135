package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/aqualoop/aqualoop/collector"
)

// Replaced marks the interval of a meter swap whose volume a replacement record supplied: the
// bucket also carries Reset, and its minutes count as measured again.
const Replaced Flag = Fault << 1

// stepReplaced is a reset interval with a replacement record.
const stepReplaced stepKind = stepSpike + 1

// Replacement is the record of a meter swap: at Time the old meter was removed reading OldFinal
// and the new one installed reading NewInitial (both m³, as the register shows them).
type Replacement struct {
	Time       time.Time
	OldFinal   float64
	NewInitial float64
}

// Replacements finds the replacement record of a meter inside (from, to]: the interval between
// the old meter's last reading and the new meter's first. ok is false when there is none. It is
// consulted only at a reset, so it may be backed by the meter register.
type Replacements func(site, meter string, from, to time.Time) (r Replacement, ok bool)

// WithReplacements lets a reset interval take its volume from a replacement record (DOMAIN.md,
// "Turning totalizers into volumes"): (final − last reading of the old meter) + (first reading
// of the new meter − initial). Without a record the interval stays at zero, flagged Reset.
func WithReplacements(r Replacements) Option { return func(l *Ledger) { l.swaps = r } }

// swap returns the volume and kind of a reset interval from a to b: replaced with the volume
// of the record when one falls inside the interval and agrees with both readings (neither part
// negative beyond noise), reset with no volume otherwise.
func (p *params) swap(a, b sample) (float64, stepKind) {
	if p.swaps == nil {
		return 0, stepReset
	}
	r, ok := p.swaps(p.site, p.meter, nsTime(a.t), nsTime(b.t))
	if !ok || r.Time.UnixNano() <= a.t || r.Time.UnixNano() > b.t {
		return 0, stepReset
	}
	old, new := r.OldFinal-a.v, b.v-r.NewInitial
	if old < -p.noise || new < -p.noise {
		// The record contradicts the readings (a typo in a reading, or the wrong meter): it
		// cannot be the swap's volume.
		return 0, stepReset
	}
	return max(old, 0) + max(new, 0), stepReplaced
}

// ComputeWith is Compute with replacement records consulted at resets.
func ComputeWith(spec MeterSpec, readings []collector.Reading, swaps Replacements) ([]Bucket, Stats) {
	p := spec.params()
	p.swaps = swaps
	ss, st := p.samples(readings)
	if len(ss) == 0 {
		return nil, st
	}
	st.add(p.events(ss), 1)
	return p.buckets(ss, alignNs(ss[0].t), alignNs(ss[len(ss)-1].t)), st
}

// Recompute returns the buckets of the interval of a meter that contains at (from the bucket of
// the last good reading at or before at to that of the first one after it), recomputed from
// History. A replacement record entered after the readings calls it, so the swap's volume
// reaches the stored ledger; the caller writes the buckets. No interval around at: no buckets.
func (l *Ledger) Recompute(ctx context.Context, site, meter string, at time.Time) ([]Bucket, error) {
	m := l.state(site, meter)
	m.mu.Lock()
	defer m.mu.Unlock()
	newest, found, err := l.h.LastReading(ctx, site, meter, horizon)
	if err != nil {
		return nil, fmt.Errorf("read newest reading of %s/%s: %w", site, meter, err)
	}
	if !found {
		return nil, nil
	}
	upper := newest.Time.UnixNano()
	t := at.UnixNano()
	before, err := l.back(ctx, m, t+1, 1)
	if err != nil {
		return nil, err
	}
	after, err := l.forward(ctx, m, t+1, 1, upper)
	if err != nil {
		return nil, err
	}
	if len(before) == 0 || len(after) == 0 {
		return nil, nil
	}
	from, to := alignNs(before[len(before)-1].t), alignNs(after[0].t)
	win, err := l.window(ctx, m, from, to+width, upper)
	if err != nil {
		return nil, err
	}
	return m.p.buckets(win, from, to), nil
}
