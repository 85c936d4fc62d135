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

// DefaultLatinFont is DejaVu Sans (fonts-dejavu-core, a free license): Droid Sans Fallback has
// no Latin letters or digits, so every run of text outside the CJK blocks is set in this font.
const DefaultLatinFont = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"

// ErrNoFont is wrapped when a font cannot be read.
var ErrNoFont = errors.New("no font for the PDF")

// Fonts are the two TrueType fonts a PDF is set in: CJK for Chinese, Latin for the rest.
type Fonts struct {
	CJK, Latin []byte
}

// LoadFonts reads the CJK and the Latin TrueType font ("" for the defaults).
func LoadFonts(cjk, latin string) (Fonts, error) {
	var fs Fonts
	var err error
	if fs.CJK, err = loadTTF(cjk, DefaultFont, "fonts-droid-fallback", "report.font"); err != nil {
		return fs, err
	}
	if fs.Latin, err = loadTTF(latin, DefaultLatinFont, "fonts-dejavu-core", "report.latin_font"); err != nil {
		return fs, err
	}
	return fs, nil
}

func loadTTF(path, def, pkg, key string) ([]byte, error) {
	if path == "" {
		path = def
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: read %s (install %s, or set %s to a .ttf file): %w", ErrNoFont, path, pkg, key, err)
	}
	if len(b) < 12 || !(string(b[:4]) == "\x00\x01\x00\x00" || string(b[:4]) == "true") {
		return nil, fmt.Errorf("%w: %s is not a TrueType font (.ttf); font collections (.ttc) cannot be embedded", ErrNoFont, path)
	}
	return b, nil
}

const (
	fontFamily = "cjk"
	latinFont  = "latin"
)

// cjkRune reports whether r is set in the CJK font: the CJK blocks from U+2E80 on (ideographs,
// CJK punctuation such as 、。〔〕, full-width forms).
func cjkRune(r rune) bool { return r >= 0x2E80 }

// runs splits s into runs of one font each.
func runs(s string) []struct {
	cjk  bool
	text string
} {
	var out []struct {
		cjk  bool
		text string
	}
	for _, r := range s {
		c := cjkRune(r)
		if n := len(out); n > 0 && out[n-1].cjk == c {
			out[n-1].text += string(r)
			continue
		}
		out = append(out, struct {
			cjk  bool
			text string
		}{c, string(r)})
	}
	return out
}

type pdfWriter struct {
	f    *fpdf.Fpdf
	lang string
	p    *Pack
	size float64
}

// setSize sets the font size both fonts are used at.
func (pw *pdfWriter) setSize(size float64) {
	pw.size = size
	pw.f.SetFont(latinFont, "", size)
}

// width is the width of s in mixed fonts.
func (pw *pdfWriter) width(s string) float64 {
	w := 0.0
	for _, r := range runs(s) {
		if r.cjk {
			pw.f.SetFont(fontFamily, "", pw.size)
		} else {
			pw.f.SetFont(latinFont, "", pw.size)
		}
		w += pw.f.GetStringWidth(r.text)
	}
	return w
}

// cell writes s in the box (x, y, w, h), vertically centred, aligned "L", "C" or "R", each run
// in its font.
func (pw *pdfWriter) cell(x, y, w, h float64, s, align string) {
	tw := pw.width(s)
	switch align {
	case "C":
		x += (w - tw) / 2
	case "R":
		x += w - tw - 0.8
	default:
		x += 0.8
	}
	base := y + h/2 + pw.size*0.3528*0.35
	for _, r := range runs(s) {
		if r.cjk {
			pw.f.SetFont(fontFamily, "", pw.size)
		} else {
			pw.f.SetFont(latinFont, "", pw.size)
		}
		pw.f.Text(x, base, r.text)
		x += pw.f.GetStringWidth(r.text)
	}
}

// line writes s on its own line at the cursor and moves below it.
func (pw *pdfWriter) line(s string, h float64) {
	x, y := pw.f.GetXY()
	pw.cell(x, y, 0, h, s, "L")
	pw.f.SetXY(12, y+h)
}

// WritePDF renders the pack as PDF in lang, with the TrueType font given.
func (p *Pack) WritePDF(w io.Writer, lang string, fonts Fonts) error {
	f := fpdf.New("P", "mm", "A4", "")
	f.SetCompression(true)
	f.AddUTF8FontFromBytes(fontFamily, "", fonts.CJK)
	f.AddUTF8FontFromBytes(latinFont, "", fonts.Latin)
	f.SetCreationDate(p.Generated)
	f.SetModificationDate(p.Generated)
	f.SetTitle(T(lang, "title")+" "+p.Site.Name+" "+p.Period.Label, true)
	f.SetCreator("aqualoop "+p.Version, true)
	f.SetProducer("aqualoop", true)
	f.SetMargins(12, 12, 12)
	f.SetAutoPageBreak(false, 12)
	pw := &pdfWriter{f: f, lang: lang, p: p}
	f.SetFooterFunc(func() {
		pw.setSize(7)
		f.SetTextColor(110, 110, 110)
		w, h := f.GetPageSize()
		pw.cell(12, h-9, w-24, 4, fmt.Sprintf("%s · %s · %s · "+T(lang, "page"), p.Site.ID, p.Period.Label, p.Generated.Format(time.DateTime), f.PageNo()), "C")
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
	pw.setSize(size)
	pw.line(text, size*0.55)
	pw.f.Ln(1.5)
}

func (pw *pdfWriter) para(text string, size float64) {
	pw.setSize(size)
	w, _ := pw.f.GetPageSize()
	for _, l := range pw.wrap(text, w-24) {
		pw.line(l, size*0.5)
	}
	pw.f.Ln(1)
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
			if pw.width(string(rs[start:i+1])) > w-1.6 && i > start {
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
		pw.setSize(size)
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
				pw.cell(x, y+0.6+float64(j)*lh, ws[i], lh, l, "L")
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
		pw.setSize(size)
		pw.line(T(pw.lang, "none"), lh+1)
	}
	f.Ln(3)
}

func (pw *pdfWriter) headRow(head []string, ws []float64, size, lh float64) {
	f := pw.f
	pw.setSize(size)
	x, y := 12.0, f.GetY()
	h := lh + 1.2
	for i, c := range head {
		f.SetFillColor(225, 235, 245)
		f.Rect(x, y, ws[i], h, "FD")
		pw.cell(x, y+0.6, ws[i], lh, c, "L")
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
		pw.setSize(font * 0.85)
		label := fl.ID + " " + Vol(fl.Volume)
		if fl.Derived {
			label += "*"
		}
		if fl.From == fl.To {
			// A circulating loop: an arc over the box.
			x0, x1, y := a.x+a.w*0.3, a.x+a.w*0.7, a.y
			f.Curve(x0, y, (x0+x1)/2, y-a.h*0.9, x1, y, "D")
			arrowHead(f, x1, y, x1+0.5, y+1)
			pw.cell(a.x, y-a.h*0.55-font*0.4, a.w, font*0.4, label, "C")
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
		lw := pw.width(label) + 1.6
		f.SetFillColor(255, 255, 255)
		f.Rect(mx-lw/2, my-font*0.25, lw, font*0.45, "F")
		pw.cell(mx-lw/2, my-font*0.25, lw, font*0.45, label, "C")
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
		pw.setSize(font)
		pw.cell(q.x, q.y+q.h*0.1, q.w, q.h*0.4, name, "C")
		pw.setSize(font * 0.85)
		v := Vol(n.In)
		switch n.Type {
		case "unit":
			v = "Δ " + Vol(n.Residual)
		case "source":
			v = Vol(n.Out)
		}
		pw.cell(q.x, q.y+q.h*0.5, q.w, q.h*0.4, v, "C")
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
