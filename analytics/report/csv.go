package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"time"
)

// WriteCSV writes every table of the pack to one CSV file: for each section a line
// "# id: title", its head, its rows and an empty line. Numbers are written at full precision
// (the shortest form that reads back exactly), text as shown. A UTF-8 byte order mark comes
// first so that Excel reads the Chinese text.
func (p *Pack) WriteCSV(w io.Writer, lang string) error {
	if _, err := io.WriteString(w, "\ufeff"); err != nil {
		return fmt.Errorf("write CSV: %w", err)
	}
	cw := csv.NewWriter(w)
	for _, t := range p.Tables(lang) {
		rec := []string{"# " + t.ID + ": " + t.Title}
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("write CSV: %w", err)
		}
		if err := cw.Write(t.Head); err != nil {
			return fmt.Errorf("write CSV: %w", err)
		}
		for _, r := range t.Rows {
			rec = rec[:0]
			for _, c := range r {
				if c.Num != nil {
					rec = append(rec, strconv.FormatFloat(*c.Num, 'g', -1, 64))
				} else {
					rec = append(rec, c.Text)
				}
			}
			if err := cw.Write(rec); err != nil {
				return fmt.Errorf("write CSV: %w", err)
			}
		}
		if err := cw.Write(nil); err != nil {
			return fmt.Errorf("write CSV: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write CSV: %w", err)
	}
	return nil
}

// WriteHourlyCSV writes the hourly volume of every meter: a row per hour, a column per meter.
func (p *Pack) WriteHourlyCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	head := append([]string{"hour"}, p.Hourly.Meters...)
	if err := cw.Write(head); err != nil {
		return fmt.Errorf("write hourly CSV: %w", err)
	}
	loc := p.site.Location()
	rec := make([]string, len(head))
	for i, t := range p.Hourly.Hours {
		rec[0] = t.In(loc).Format(time.RFC3339)
		for m := range p.Hourly.Meters {
			rec[m+1] = strconv.FormatFloat(p.Hourly.Volume[i][m], 'g', -1, 64)
		}
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("write hourly CSV: %w", err)
		}
	}
	cw.Flush()
	return cw.Error()
}
