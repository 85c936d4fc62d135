package api

import (
	"context"
	"net/http"
	"time"

	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/analytics/api/problem"
	"github.com/aqualoop/aqualoop/analytics/store"
	"github.com/aqualoop/aqualoop/collector"
)

// GET /api/v1/sites/{site}/conflicts?from&to (or ?meter=, ?period=&at) lists the readings the
// store set aside because another reading of the same meter and time was stored first: the kept
// one beside each, so an auditor sees that evidence was never rewritten. The store's Readings
// must implement store.Evidence; both aqualoop stores do.

// maxConflicts bounds one answer; a longer list says truncated and asks for a shorter period.
const maxConflicts = 10000

// evidence is what the conflicts endpoint needs of the store.
type evidence interface {
	Readings
	Conflicts(ctx context.Context, site, meter string, from, to time.Time) ([]store.Conflict, error)
}

type conflictsAnswer struct {
	Site      string         `json:"site"`
	From      time.Time      `json:"from"`
	To        time.Time      `json:"to"`
	Conflicts []conflictJSON `json:"conflicts"`
	// Truncated says the period holds more than maxConflicts conflicts; ask for less.
	Truncated bool `json:"truncated,omitempty"`
}

type conflictJSON struct {
	Meter    string       `json:"meter"`
	Time     time.Time    `json:"time"`
	Received time.Time    `json:"received"`
	Kept     *readingJSON `json:"kept"` // the reading every figure uses (first stored)
	SetAside readingJSON  `json:"set_aside"`
}

type readingJSON struct {
	Edge       string      `json:"edge"`
	Seq        uint64      `json:"seq"`
	TimeSource string      `json:"time_source"`
	Points     []pointJSON `json:"points"`
}

type pointJSON struct {
	Name    string   `json:"name"`
	Value   *float64 `json:"value,omitempty"` // absent for a bad point
	Unit    string   `json:"unit,omitempty"`
	Quality string   `json:"quality"`
	Code    uint32   `json:"code,omitempty"`
	Error   string   `json:"error,omitempty"`
}

func toReadingJSON(r collector.Reading) readingJSON {
	out := readingJSON{Edge: r.Edge, Seq: r.Seq, TimeSource: string(r.TimeSource), Points: make([]pointJSON, len(r.Points))}
	for i, p := range r.Points {
		pj := pointJSON{Name: p.Name, Unit: p.Unit, Quality: p.Quality.String(), Code: p.Code, Error: p.Error}
		if p.Quality != collector.Bad {
			v := p.Value
			pj.Value = &v
		}
		out.Points[i] = pj
	}
	return out
}

func (h *handler) conflicts(w http.ResponseWriter, r *http.Request, s *analytics.Site) {
	ev, ok := h.o.Readings.(evidence)
	if !ok {
		problem.Write(w, http.StatusNotImplemented, problem.NotImplemented, "", "this store keeps no record of conflicting readings")
		return
	}
	from, to, fe := h.period(r, s.Location())
	if fe != nil {
		badParam(w, fe)
		return
	}
	meter := r.URL.Query().Get("meter")
	if meter != "" {
		if _, ok := s.Meter(meter); !ok {
			problem.Write(w, http.StatusNotFound, problem.NotFound, "meter", "meter "+strconvQuote(meter)+" is not in site "+s.ID)
			return
		}
	}
	cs, err := ev.Conflicts(r.Context(), s.ID, meter, from, to)
	if err != nil {
		h.answer(w, "read conflicts", nil, err)
		return
	}
	out := conflictsAnswer{Site: s.ID, From: from, To: to, Conflicts: []conflictJSON{}}
	if len(cs) > maxConflicts {
		cs, out.Truncated = cs[:maxConflicts], true
	}
	for _, c := range cs {
		cj := conflictJSON{Meter: c.Reading.Meter, Time: c.Reading.Time, Received: c.Received, SetAside: toReadingJSON(c.Reading)}
		kept, ok, err := ev.LastReading(r.Context(), s.ID, c.Reading.Meter, c.Reading.Time)
		if err != nil {
			h.answer(w, "read kept reading", nil, err)
			return
		}
		if ok && kept.Time.Equal(c.Reading.Time) {
			k := toReadingJSON(kept)
			cj.Kept = &k
		}
		out.Conflicts = append(out.Conflicts, cj)
	}
	h.writeJSON(w, "conflicts", out)
}
