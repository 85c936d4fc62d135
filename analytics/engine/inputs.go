package engine

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aqualoop/aqualoop/analytics"
)

// ParseTime reads an instant as people write the periods of production figures: RFC 3339
// ("2026-03-01T00:00:00+08:00"), or in the site's time zone a local time ("2026-03-01T08:00"),
// a day ("2026-03-01", its midnight) or a month ("2026-03", its first midnight).
func ParseTime(s string, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	// An unescaped '+' of an offset in a URL query arrives as a space.
	if i := strings.LastIndexByte(s, ' '); i > 0 && strings.Contains(s[:i], "T") {
		if t, err := time.Parse(time.RFC3339Nano, s[:i]+"+"+s[i+1:]); err == nil {
			return t, nil
		}
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02", "2006-01"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time: write 2026-03-01T00:00:00+08:00, 2026-03-01T08:00, 2026-03-01 or 2026-03", s)
}

// ErrOverlap is wrapped when a production input overlaps a stored one that starts elsewhere:
// summed pro rata, both would count the overlap.
var ErrOverlap = errors.New("overlaps another production input")

// Overlapping returns the first of stored (inputs of the same site) that overlaps in but does
// not start where it does: writing in would then count the overlap twice. An input with the
// same start is the one in replaces.
func Overlapping(stored []Input, in Input) (Input, bool) {
	for _, s := range stored {
		if s.Site == in.Site && !s.From.Equal(in.From) && s.From.Before(in.To) && in.From.Before(s.To) {
			return s, true
		}
	}
	return Input{}, false
}

// InputColumns are the columns of a production inputs file, in any order after the header row.
var InputColumns = []string{"site", "from", "to", "product", "product_unit", "output_value", "steam"}

// ReadInputsCSV reads a production inputs file: a header row naming the columns of
// InputColumns (site, from and to required, the figures optional), then one input per row. An
// empty cell leaves a figure unknown; times are read by ParseTime in the site's time zone; lines
// starting with '#' are comments. Every row is checked against the sites and with Input.Check,
// and rows of one site must not overlap; all problems are reported at once, by line.
func ReadInputsCSV(r io.Reader, name string, sites []*analytics.Site) ([]Input, error) {
	byID := make(map[string]*analytics.Site, len(sites))
	for _, s := range sites {
		byID[s.ID] = s
	}
	cr := csv.NewReader(r)
	cr.Comment = '#'
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("read production inputs %s: header: %w", name, err)
	}
	col := map[string]int{}
	var problems []string
	for i, h := range header {
		h = strings.TrimSpace(strings.ToLower(h))
		if !slices.Contains(InputColumns, h) {
			problems = append(problems, fmt.Sprintf("%s:1: column %q is not one of %v", name, h, InputColumns))
			continue
		}
		col[h] = i
	}
	for _, req := range []string{"site", "from", "to"} {
		if _, ok := col[req]; !ok {
			problems = append(problems, fmt.Sprintf("%s:1: column %s is required", name, req))
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("read production inputs: %s", strings.Join(problems, "; "))
	}
	var out []Input
	var lines []int
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", name, err))
			break
		}
		cell := func(c string) string {
			if i, ok := col[c]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		good := true
		bad := func(format string, args ...any) {
			problems = append(problems, fmt.Sprintf("%s:%d: ", name, line)+fmt.Sprintf(format, args...))
			good = false
		}
		in := Input{Site: cell("site"), ProductUnit: cell("product_unit")}
		s, ok := byID[in.Site]
		if !ok {
			bad("unknown site %q", in.Site)
			continue
		}
		if in.From, err = ParseTime(cell("from"), s.Location()); err != nil {
			bad("from: %v", err)
		}
		if in.To, err = ParseTime(cell("to"), s.Location()); err != nil {
			bad("to: %v", err)
		}
		for _, f := range []struct {
			name string
			dst  **float64
		}{{"product", &in.Product}, {"output_value", &in.OutputValue}, {"steam", &in.Steam}} {
			v := cell(f.name)
			if v == "" {
				continue
			}
			x, err := strconv.ParseFloat(v, 64)
			if err != nil {
				bad("%s: %q is not a number", f.name, v)
				continue
			}
			*f.dst = &x
		}
		if !good {
			continue
		}
		if err := in.Check(); err != nil {
			bad("%v", err)
			continue
		}
		out = append(out, in)
		lines = append(lines, line)
	}
	for i, in := range out {
		for j, prev := range out[:i] {
			if prev.Site != in.Site || !prev.From.Before(in.To) || !in.From.Before(prev.To) {
				continue
			}
			problems = append(problems, fmt.Sprintf("%s:%d: the %s row from %s %v on line %d", name, lines[i], in.Site,
				in.From.Format(time.RFC3339), ErrOverlap, lines[j]))
			break
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("read production inputs: %s", strings.Join(problems, "; "))
	}
	return out, nil
}

// InputStore keeps production inputs: what LoadInputs writes to.
type InputStore interface {
	WriteInputs(ctx context.Context, ins []Input) error
	Inputs(ctx context.Context, site string, from, to time.Time) ([]Input, error)
}

// LoadInputs reads a production inputs file (see ReadInputsCSV) and stores its rows. A row with
// the start of a stored input replaces it; a row that overlaps a stored input starting elsewhere
// is an error and nothing is stored, since both would be counted.
func LoadInputs(ctx context.Context, path string, sites []*analytics.Site, st InputStore) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("load production inputs: %w", err)
	}
	defer f.Close()
	ins, err := ReadInputsCSV(f, path, sites)
	if err != nil {
		return 0, err
	}
	for _, in := range ins {
		stored, err := st.Inputs(ctx, in.Site, in.From, in.To)
		if err != nil {
			return 0, fmt.Errorf("load production inputs %s: %w", path, err)
		}
		if other, ok := Overlapping(stored, in); ok {
			return 0, fmt.Errorf("load production inputs %s: the %s row from %s %w stored from %s to %s",
				path, in.Site, in.From.Format(time.RFC3339), ErrOverlap, other.From.Format(time.RFC3339), other.To.Format(time.RFC3339))
		}
	}
	if err := st.WriteInputs(ctx, ins); err != nil {
		return 0, fmt.Errorf("load production inputs %s: %w", path, err)
	}
	return len(ins), nil
}
