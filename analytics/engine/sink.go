package engine

import (
	"context"
	"log/slog"
	"sync"
)

// LogSink returns a Sink that logs, at warn, when a site's declared reuse rate of the day falls
// below the sector benchmark of its site file, and at info when it is back above. It stands in
// for alerting until that is wired; each crossing is logged once, not every evaluation.
func (e *Engine) LogSink(logger *slog.Logger) Sink {
	var mu sync.Mutex
	below := map[string]bool{}
	return func(_ context.Context, snap Snapshot) {
		if snap.Boundary != BoundarySite {
			return
		}
		s, err := e.Site(snap.Site)
		if err != nil || s.Indicators.Benchmark == nil {
			return
		}
		b := s.Indicators.Benchmark
		ind := snap.Day.Indicators
		r := ind.ReuseRate
		if ind.Declared == "reuse_rate_with_vu" {
			r = ind.ReuseRateWithVu
		}
		if r == nil {
			return
		}
		mu.Lock()
		was, now := below[snap.Site], *r < b.ReuseRate
		below[snap.Site] = now
		mu.Unlock()
		switch {
		case now && !was:
			logger.Warn("declared reuse rate of the day is below the sector benchmark; only logged until alerting is wired",
				"site", snap.Site, "reuse_rate", *r, "benchmark", b.ReuseRate, "sector", b.Sector, "benchmark_year", b.Year,
				"benchmark_source", b.Source, "coverage", ind.Rates.ReuseRate.Coverage)
		case !now && was:
			logger.Info("declared reuse rate of the day is back above the sector benchmark", "site", snap.Site, "reuse_rate", *r, "benchmark", b.ReuseRate)
		}
	}
}
