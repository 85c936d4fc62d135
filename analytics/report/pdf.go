package report

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"github.com/go-pdf/fpdf"
)

// DefaultFont is where Debian's fonts-droid-fallback puts Droid Sans Fallback (Apache License
// 2.0), a TrueType font that covers the GB/T terms. fpdf reads TrueType (.ttf) only, not the
// collections (.ttc) Noto CJK ships as, so the font is read from this path (or report.font) and
// embedded, subset, in every PDF.
const DefaultFont = "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"

// ErrNoFont is wrapped when the CJK font cannot be read.
var ErrNoFont = errors.New("no CJK font for the PDF")

// LoadFont reads a TrueType font file for the PDF.
func LoadFont(path string) ([]byte, error) {
	if path == "" {
		path = DefaultFont
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: read %s (install fonts-droid-fallback, or set report.font to a .ttf that covers Chinese): %w", ErrNoFont, path, err)
	}
	if len(b) < 12 || !(string(b[:4]) == "\x00\x01\x00\x00" || string(b[:4]) == "true") {
		return nil, fmt.Errorf("%w: %s is not a TrueType font (.ttf); font collections (.ttc) cannot be embedded", ErrNoFont, path)
	}
	return b, nil
}

const fontFamily = "cjk"

type pdfWriter struct {
	f    *fpdf.Fpdf
	lang string
	p    *Pack
}

// WritePDF renders the pack as PDF in lang, with the TrueType font given.
func (p *Pack) WritePDF(w io.Writer, lang string, font []byte) error {
	f := fpdf.New("P", "mm", "A4", "")
	f.SetCompression(true)
	f.AddUTF8FontFromBytes(fontFamily, "", font)
	f.SetCreationDate(p.Generated)
	f.SetModificationDate(p.Generated)
	f.SetTitle(T(lang, "title")+" "+p.Site.Name+" "+p.Period.Label, true)
	f.SetCreator("aqualoop "+p.Version, true)
	f.SetProducer("aqualoop", true)
	f.SetMargins(12, 12, 12)
	f.SetAutoPageBreak(false, 12)
	pw := &pdfWriter{f: f, lang: lang, p: p}
	f.SetFooterFunc(func() {
		f.SetFont(fontFamily, "", 7)
		f.SetTextColor(110, 110, 110)
		_, h := f.GetPageSize()
		f.SetXY(12, h-9)
		f.CellFormat(0, 4, fmt.Sprintf("%s · %s · %s · "+T(lang, "page"), p.Site.ID, p.Period.Label, p.Generated.Format(time.DateTime), f.PageNo()), "", 0, "C", false, 0, "")
		f.SetTextColor(0, 0, 0)
	})
	tables := p.Tables(lang)
	pw.summary(tables[0])
	for _, t := range tables[1:] {
		orient := "P"
		if len(t.Head) > 9 {
			orient = "L"
		}
		pw.page(orient)
		pw.table(t)
		if t.ID == "register" {
			pw.page("L")
			pw.diagram()
		}
	}
	if f.Err() {
		return fmt.Errorf("render PDF: %w", f.Error())
	}
	if err := f.Output(w); err != nil {
		return fmt.Errorf("write PDF: %w", err)
	}
	return nil
}

func (pw *pdfWriter) page(orient string) {
	pw.f.AddPageFormat(orient, fpdf.SizeType{Wd: 210, Ht: 297})
	pw.f.SetXY(12, 12)
}

func (pw *pdfWriter) heading(text string, size float64) {
	f := pw.f
	f.SetFont(fontFamily, "", size)
	f.CellFormat(0, size*0.55, text, "", 1, "L", false, 0, "")
	f.Ln(1.5)
}

func (pw *pdfWriter) para(text string, size float64) {
	f := pw.f
	f.SetFont(fontFamily, "", size)
	w, _ := f.GetPageSize()
	for _, l := range pw.wrap(text, w-24) {
		f.CellFormat(0, size*0.5, l, "", 1, "L", false, 0, "")
	}
	f.Ln(1)
}

// wrap splits text into lines no wider than w at the current font, at spaces when it can and
// between any two characters otherwise (Chinese has no spaces).
func (pw *pdfWriter) wrap(text string, w float64) []string {
	var out []string
	for _, para := range strings.Split(text, "\n") {
		rs := []rune(para)
		start, lastSpace := 0, -1
		for i := 0; i < len(rs); i++ {
			if rs[i] == ' ' {
				lastSpace = i
			}
			if pw.f.GetStringWidth(string(rs[start:i+1])) > w-1 && i > start {
				cut := i
				if lastSpace > start {
					cut = lastSpace
				}
				out = append(out, string(rs[start:cut]))
				if cut == lastSpace {
					cut++
				}
				start, lastSpace = cut, -1
				i = start - 1
			}
		}
		out = append(out, string(rs[start:]))
	}
	return out
}

// table draws a table with wrapped cells, repeating its head on each new page.
func (pw *pdfWriter) table(t Table) {
	f := pw.f
	pw.heading(t.Title, 12)
	pageW, pageH := f.GetPageSize()
	usable := pageW - 24
	size := 8.0
	if len(t.Head) > 9 {
		size = 6.5
	}
	total := 0.0
	widths := t.Widths
	if len(widths) != len(t.Head) {
		widths = make([]float64, len(t.Head))
		for i := range widths {
			widths[i] = 1
		}
	}
	for _, w := range widths {
		total += w
	}
	ws := make([]float64, len(widths))
	for i, w := range widths {
		ws[i] = w / total * usable
	}
	lh := size * 0.48
	drawRow := func(cells []string, fill bool) {
		f.SetFont(fontFamily, "", size)
		lines := make([][]string, len(cells))
		n := 1
		for i, c := range cells {
			lines[i] = pw.wrap(c, ws[i])
			if len(lines[i]) > 8 {
				lines[i] = append(lines[i][:7], "…")
			}
			n = max(n, len(lines[i]))
		}
		h := float64(n)*lh + 1.2
		if f.GetY()+h > pageH-14 {
			orient := "P"
			if pageW > pageH {
				orient = "L"
			}
			pw.page(orient)
			if !fill {
				pw.headRow(t.Head, ws, size, lh)
			}
		}
		x, y := 12.0, f.GetY()
		for i := range cells {
			if fill {
				f.SetFillColor(225, 235, 245)
				f.Rect(x, y, ws[i], h, "FD")
			} else {
				f.Rect(x, y, ws[i], h, "D")
			}
			for j, l := range lines[i] {
				f.SetXY(x, y+0.6+float64(j)*lh)
				f.CellFormat(ws[i], lh, l, "", 0, "L", false, 0, "")
			}
			x += ws[i]
		}
		f.SetXY(12, y+h)
	}
	f.SetDrawColor(150, 150, 150)
	f.SetLineWidth(0.15)
	drawRow(t.Head, true)
	for _, r := range t.Rows {
		cells := make([]string, len(r))
		for i, c := range r {
			cells[i] = c.Text
		}
		drawRow(cells, false)
	}
	if len(t.Rows) == 0 {
		f.SetFont(fontFamily, "", size)
		f.CellFormat(0, lh+1, T(pw.lang, "none"), "", 1, "L", false, 0, "")
	}
	f.Ln(3)
}

func (pw *pdfWriter) headRow(head []string, ws []float64, size, lh float64) {
	f := pw.f
	f.SetFont(fontFamily, "", size)
	x, y := 12.0, f.GetY()
	h := lh + 1.2
	for i, c := range head {
		f.SetFillColor(225, 235, 245)
		f.Rect(x, y, ws[i], h, "FD")
		f.SetXY(x, y+0.6)
		f.CellFormat(ws[i], lh, c, "", 0, "L", false, 0, "")
		x += ws[i]
	}
	f.SetXY(12, y+h)
}

// summary is the first page: who, what period, and each pilot condition with its number.
func (pw *pdfWriter) summary(t Table) {
	p, L := pw.p, func(k string) string { return T(pw.lang, k) }
	pw.page("P")
	pw.heading(L("title"), 16)
	pw.para(fmt.Sprintf("%s (%s) · %s %s · %s – %s %s", p.Site.Name, p.Site.ID, L("period"), p.Period.Label,
		p.Period.From.Format(time.DateOnly), p.Period.To.Format(time.DateTime), p.Site.Timezone), 10)
	if p.Period.Partial {
		pw.para(L("partial")+" "+p.Period.To.Format(time.DateTime), 10)
	}
	pw.table(t)
	if p.Gaps {
		pw.f.SetTextColor(180, 0, 0)
		pw.para(L("gaps"), 10)
		pw.f.SetTextColor(0, 0, 0)
	} else {
		pw.para(L("complete"), 10)
	}
	r := p.Indicators
	pw.para(fmt.Sprintf("R = Vr / (Vr + Vi) = %s / (%s + %s) = %s", Vol(r.Volumes.Vr), Vol(r.Volumes.Vr), Vol(r.Volumes.Vi), PctPtr(r.ReuseRate)), 9)
	pw.para(fmt.Sprintf("R (Vu) = Vr / (Vr + Vi + Vu) = %s", PctPtr(r.ReuseRateWithVu)), 9)
}

// diagram draws the water balance diagram: nodes in layers from the sources (left) to the
// sinks (right), each layer one column; every flow an arrow labelled with its volume, every unit
// a box with its residual.
func (pw *pdfWriter) diagram() {
	f, p := pw.f, pw.p
	pw.heading(T(pw.lang, "diagram"), 12)
	pw.para(T(pw.lang, "diagram_note"), 8)
	layers := layout(p)
	pageW, pageH := f.GetPageSize()
	top, bottom := f.GetY()+2, pageH-16
	cols := len(layers)
	colW := (pageW - 24) / float64(max(cols, 1))
	boxW := min(colW*0.6, 45)
	type pos struct{ x, y, w, h float64 }
	at := map[string]pos{}
	maxRows := 1
	for _, l := range layers {
		maxRows = max(maxRows, len(l))
	}
	rowH := (bottom - top) / float64(maxRows)
	boxH := min(rowH*0.55, 14)
	font := math.Max(3, math.Min(7, boxH*0.7))
	for c, l := range layers {
		for r, n := range l {
			x := 12 + float64(c)*colW + (colW-boxW)/2
			y := top + (float64(r)+0.5)*(bottom-top)/float64(len(l)) - boxH/2
			at[n] = pos{x, y, boxW, boxH}
		}
	}
	nodes := map[string]int{}
	for i, n := range p.Balance.Nodes {
		nodes[n.ID] = i
	}
	f.SetLineWidth(0.25)
	for _, fl := range p.Balance.Flows {
		a, okA := at[fl.From]
		b, okB := at[fl.To]
		if !okA || !okB {
			continue
		}
		f.SetDrawColor(40, 90, 160)
		f.SetFillColor(40, 90, 160)
		f.SetFont(fontFamily, "", font*0.85)
		label := fl.ID + " " + Vol(fl.Volume)
		if fl.Derived {
			label += "*"
		}
		if fl.From == fl.To {
			// A circulating loop: an arc over the box.
			x0, x1, y := a.x+a.w*0.3, a.x+a.w*0.7, a.y
			f.Curve(x0, y, (x0+x1)/2, y-a.h*0.9, x1, y, "D")
			arrowHead(f, x1, y, x1+0.5, y+1)
			f.SetXY(a.x, y-a.h*0.55-font*0.4)
			f.CellFormat(a.w, font*0.4, label, "", 0, "C", false, 0, "")
			continue
		}
		x0, y0 := a.x+a.w, a.y+a.h/2
		x1, y1 := b.x, b.y+b.h/2
		if b.x <= a.x { // a flow back to an earlier layer: from the left side to the right side
			x0, x1 = a.x, b.x+b.w
		}
		f.Line(x0, y0, x1, y1)
		arrowHead(f, x1, y1, x0, y0)
		mx, my := x0+(x1-x0)*0.45, y0+(y1-y0)*0.45
		f.SetTextColor(20, 60, 130)
		lw := f.GetStringWidth(label) + 1
		f.SetFillColor(255, 255, 255)
		f.SetXY(mx-lw/2, my-font*0.25)
		f.CellFormat(lw, font*0.45, label, "", 0, "C", true, 0, "")
		f.SetTextColor(0, 0, 0)
	}
	f.SetDrawColor(0, 0, 0)
	for _, n := range p.Balance.Nodes {
		q, ok := at[n.ID]
		if !ok {
			continue
		}
		switch n.Type {
		case "source":
			f.SetFillColor(220, 240, 220)
		case "sink":
			f.SetFillColor(240, 225, 215)
		default:
			f.SetFillColor(235, 235, 250)
		}
		f.Rect(q.x, q.y, q.w, q.h, "FD")
		name := n.ID
		if n.Name != "" {
			name = n.Name
		}
		f.SetFont(fontFamily, "", font)
		f.SetXY(q.x, q.y+q.h*0.1)
		f.CellFormat(q.w, q.h*0.4, name, "", 0, "C", false, 0, "")
		f.SetFont(fontFamily, "", font*0.85)
		f.SetXY(q.x, q.y+q.h*0.5)
		if n.Type == "unit" {
			f.CellFormat(q.w, q.h*0.4, "Δ "+Vol(n.Residual), "", 0, "C", false, 0, "")
		} else if n.Type == "source" {
			f.CellFormat(q.w, q.h*0.4, Vol(n.Out), "", 0, "C", false, 0, "")
		} else {
			f.CellFormat(q.w, q.h*0.4, Vol(n.In), "", 0, "C", false, 0, "")
		}
	}
}

// arrowHead draws a filled head at (x, y) pointing away from (fx, fy).
func arrowHead(f *fpdf.Fpdf, x, y, fx, fy float64) {
	dx, dy := x-fx, y-fy
	l := math.Hypot(dx, dy)
	if l == 0 {
		return
	}
	dx, dy = dx/l, dy/l
	const s = 1.8
	f.Polygon([]fpdf.PointType{
		{X: x, Y: y},
		{X: x - s*dx - s*0.5*dy, Y: y - s*dy + s*0.5*dx},
		{X: x - s*dx + s*0.5*dy, Y: y - s*dy - s*0.5*dx},
	}, "F")
}

// layout puts sources in the first layer, sinks in the last, and each unit one layer after the
// furthest unit or source feeding it (longest path, ignoring loops), then orders each layer.
func layout(p *Pack) [][]string {
	depth := map[string]int{}
	for _, n := range p.Balance.Nodes {
		if n.Type != "sink" {
			depth[n.ID] = 0
		}
	}
	// Relax at most len(nodes) times: a cycle among units stops growing there.
	for range p.Balance.Nodes {
		changed := false
		for _, fl := range p.Balance.Flows {
			if fl.From == fl.To {
				continue
			}
			a, okA := depth[fl.From]
			b, okB := depth[fl.To]
			if okA && okB && b < a+1 && b < len(p.Balance.Nodes) {
				depth[fl.To] = a + 1
				changed = true
			}
		}
		if !changed {
			break
		}
	}
	maxD := 0
	for _, d := range depth {
		maxD = max(maxD, d)
	}
	layers := make([][]string, maxD+2)
	for _, n := range p.Balance.Nodes {
		if n.Type == "sink" {
			layers[maxD+1] = append(layers[maxD+1], n.ID)
			continue
		}
		layers[depth[n.ID]] = append(layers[depth[n.ID]], n.ID)
	}
	var out [][]string
	for _, l := range layers {
		if len(l) > 0 {
			out = append(out, l)
		}
	}
	return out
}
