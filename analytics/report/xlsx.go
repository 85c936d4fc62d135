package report

import (
	"fmt"
	"io"
	"regexp"
	"strconv"
	"time"

	"github.com/xuri/excelize/v2"
)

var colRef = regexp.MustCompile(`\{([A-Z]{1,2})\}`)

// SheetHourly and SheetMonthlyMeters name the sheets of hourly volumes and of their monthly
// sums per meter.
const (
	SheetHourly        = "hourly"
	SheetMonthlyMeters = "monthly_meters"
)

// WriteXLSX renders the pack as a workbook: one sheet per section (named by the table's id),
// title in row 1, head in row 2, data from row 3. Every computed figure is an Excel formula over
// the volume cells of its row, so an auditor can recompute it; the hourly sheet lists each
// meter's hourly volumes and the monthly_meters sheet sums them per month with formulas.
func (p *Pack) WriteXLSX(w io.Writer, lang string) error {
	f := excelize.NewFile()
	defer f.Close()
	first := true
	for _, t := range p.Tables(lang) {
		if first {
			if err := f.SetSheetName("Sheet1", t.ID); err != nil {
				return fmt.Errorf("name sheet %s: %w", t.ID, err)
			}
			first = false
		} else if _, err := f.NewSheet(t.ID); err != nil {
			return fmt.Errorf("add sheet %s: %w", t.ID, err)
		}
		if err := writeSheet(f, t); err != nil {
			return err
		}
	}
	if err := p.hourlySheet(f, lang); err != nil {
		return err
	}
	t := true
	if err := f.SetCalcProps(&excelize.CalcPropsOptions{FullCalcOnLoad: &t}); err != nil {
		return fmt.Errorf("set calculation on load: %w", err)
	}
	if _, err := f.WriteTo(w); err != nil {
		return fmt.Errorf("write XLSX: %w", err)
	}
	return nil
}

// DataRow is the sheet row of a table's i-th data row (0-based).
func DataRow(i int) int { return i + 3 }

func writeSheet(f *excelize.File, t Table) error {
	set := func(cell string, v any) error {
		if err := f.SetCellValue(t.ID, cell, v); err != nil {
			return fmt.Errorf("write %s!%s: %w", t.ID, cell, err)
		}
		return nil
	}
	if err := set("A1", t.Title); err != nil {
		return err
	}
	for c, h := range t.Head {
		ref, _ := excelize.CoordinatesToCellName(c+1, 2)
		if err := set(ref, h); err != nil {
			return err
		}
	}
	for i, r := range t.Rows {
		row := DataRow(i)
		for c, cell := range r {
			ref, _ := excelize.CoordinatesToCellName(c+1, row)
			switch {
			case cell.Formula != "":
				fm := colRef.ReplaceAllString(cell.Formula, "${1}"+strconv.Itoa(row))
				if err := f.SetCellFormula(t.ID, ref, fm); err != nil {
					return fmt.Errorf("write formula %s!%s: %w", t.ID, ref, err)
				}
			case cell.Num != nil:
				if err := set(ref, *cell.Num); err != nil {
					return err
				}
			default:
				if err := set(ref, cell.Text); err != nil {
					return err
				}
			}
		}
	}
	last, _ := excelize.ColumnNumberToName(max(len(t.Head), 1))
	return f.SetColWidth(t.ID, "A", last, 14)
}

// hourlySheet writes the hourly volume of every meter (a row per hour, a column per meter) and
// the monthly sums per meter over it.
func (p *Pack) hourlySheet(f *excelize.File, lang string) error {
	if _, err := f.NewSheet(SheetHourly); err != nil {
		return fmt.Errorf("add sheet %s: %w", SheetHourly, err)
	}
	sw, err := f.NewStreamWriter(SheetHourly)
	if err != nil {
		return fmt.Errorf("stream sheet %s: %w", SheetHourly, err)
	}
	h := p.Hourly
	head := make([]any, 0, len(h.Meters)+1)
	head = append(head, T(lang, "hour"))
	for _, m := range h.Meters {
		head = append(head, m)
	}
	if err := sw.SetRow("A1", head); err != nil {
		return fmt.Errorf("write sheet %s: %w", SheetHourly, err)
	}
	loc := p.site.Location()
	row := make([]any, len(h.Meters)+1)
	for i, t := range h.Hours {
		row[0] = t.In(loc).Format("2006-01-02 15:04")
		for m := range h.Meters {
			row[m+1] = h.Volume[i][m]
		}
		ref, _ := excelize.CoordinatesToCellName(1, i+2)
		if err := sw.SetRow(ref, row); err != nil {
			return fmt.Errorf("write sheet %s: %w", SheetHourly, err)
		}
	}
	if err := sw.Flush(); err != nil {
		return fmt.Errorf("write sheet %s: %w", SheetHourly, err)
	}

	if _, err := f.NewSheet(SheetMonthlyMeters); err != nil {
		return fmt.Errorf("add sheet %s: %w", SheetMonthlyMeters, err)
	}
	if err := f.SetCellValue(SheetMonthlyMeters, "A1", T(lang, "month")); err != nil {
		return err
	}
	for m, id := range h.Meters {
		ref, _ := excelize.CoordinatesToCellName(m+2, 1)
		if err := f.SetCellValue(SheetMonthlyMeters, ref, id); err != nil {
			return err
		}
	}
	for i, mo := range p.Months {
		r := i + 2
		first, last := p.hourRows(mo.From, mo.To)
		if err := f.SetCellValue(SheetMonthlyMeters, "A"+strconv.Itoa(r), mo.Label); err != nil {
			return err
		}
		for m := range h.Meters {
			col, _ := excelize.ColumnNumberToName(m + 2)
			ref := col + strconv.Itoa(r)
			fm := fmt.Sprintf("SUM(%s!%s%d:%s%d)", SheetHourly, col, first, col, last)
			if last < first {
				fm = "0"
			}
			if err := f.SetCellFormula(SheetMonthlyMeters, ref, fm); err != nil {
				return fmt.Errorf("write formula %s!%s: %w", SheetMonthlyMeters, ref, err)
			}
		}
	}
	return nil
}

// hourRows returns the rows of the hourly sheet that cover [from, to).
func (p *Pack) hourRows(from, to time.Time) (first, last int) {
	first, last = -1, -2
	for i, t := range p.Hourly.Hours {
		if !t.Before(from) && t.Before(to) {
			if first < 0 {
				first = i + 2
			}
			last = i + 2
		}
	}
	return first, last
}

// MeterColumn is the column of a meter in the hourly and monthly_meters sheets.
func (p *Pack) MeterColumn(meter string) string {
	for i, m := range p.Hourly.Meters {
		if m == meter {
			c, _ := excelize.ColumnNumberToName(i + 2)
			return c
		}
	}
	return ""
}
