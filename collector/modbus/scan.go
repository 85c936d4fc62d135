package modbus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	gridx "github.com/grid-x/modbus"
)

// ScanConfig walks an address range of one slave to find the registers a device has.
type ScanConfig struct {
	ProbeConfig          // transport, slave, timeout and address base; Address and Count unused
	Tables      []string // holding and/or input; default both
	From, To    int      // first and last address, in the address base; default 0..999
	Block       int      // registers per read to start with, default 125; halved on exception 2
	// Wait is the time between the two reads of what answered: long enough for a flowing
	// meter's totalizer to count up (default 2s).
	Wait time.Duration

	betweenReads func() // tests change registers here
}

// A scanned register range of one table: what answered, read twice.
type scanRun struct {
	table         table
	start         int
	first, second []byte // 2 bytes per register
}

// Scan reads cfg's range in blocks, halving a block that the device refuses with exception 2
// (illegal data address) down to single registers, so a map with gaps is found without knowing
// it first. It reads what answered a second time after cfg.Wait and prints: the addresses that
// answer, every 32- and 64-bit decoding of each pair and quad in every byte order with scaled
// columns, and the candidates for a totalizer (non-negative, not decreasing between the reads)
// and for a flow rate (a small non-negative float) ranked, most plausible first.
func Scan(ctx context.Context, cfg ScanConfig, w io.Writer) error {
	if len(cfg.Tables) == 0 {
		cfg.Tables = []string{RegisterHolding, RegisterInput}
	}
	if cfg.To == 0 && cfg.From == 0 {
		cfg.To = 999
	}
	if cfg.Block <= 0 || cfg.Block > maxRegistersPerRequest {
		cfg.Block = maxRegistersPerRequest
	}
	if cfg.Wait == 0 {
		cfg.Wait = 2 * time.Second
	}
	lo, hi := cfg.From-cfg.AddressBase, cfg.To-cfg.AddressBase
	if lo < 0 || hi > 0xFFFF || hi < lo {
		return fmt.Errorf("scan range %d..%d does not fit in the addresses of base %d", cfg.From, cfg.To, cfg.AddressBase)
	}
	var tables []table
	for _, name := range cfg.Tables {
		t, ok := parseTable(strings.ToLower(name))
		if !ok || t.bits() {
			return fmt.Errorf("register table %q is not holding or input", name)
		}
		tables = append(tables, t)
	}
	l, controller, err := probeLink(cfg.ProbeConfig)
	if err != nil {
		return err
	}
	defer l.close()
	var runs []scanRun
	for _, t := range tables {
		found, err := scanTable(ctx, l, cfg, t, lo, hi)
		if err != nil {
			return err
		}
		runs = append(runs, found...)
	}
	if len(runs) > 0 {
		if cfg.betweenReads != nil {
			cfg.betweenReads()
		}
		if err := sleep(ctx, cfg.Wait); err != nil {
			return err
		}
		for i := range runs {
			r := &runs[i]
			for off := 0; off < len(r.first)/2; off += maxRegistersPerRequest {
				n := min(len(r.first)/2-off, maxRegistersPerRequest)
				b, err := l.read(ctx, cfg.SlaveID, r.table, uint16(r.start+off), uint16(n))
				if err != nil {
					return fmt.Errorf("read %s %s again: %w", r.table, span(r.start+off, n), err)
				}
				r.second = append(r.second, b[:2*n]...)
			}
		}
	}
	return writeScan(w, cfg, controller, runs)
}

// probeLink opens a link for probe and scan.
func probeLink(cfg ProbeConfig) (*link, string, error) {
	bus := Config{
		Transport: cfg.Transport, Controller: cfg.Controller, BaudRate: cfg.BaudRate, DataBits: cfg.DataBits,
		Parity: cfg.Parity, StopBits: cfg.StopBits, Timeout: cfg.Timeout,
	}
	bus.Default()
	l, err := newLink(linkConfig{
		transport: bus.Transport, controller: bus.Controller, baudRate: bus.BaudRate, dataBits: bus.DataBits,
		parity: bus.Parity, stopBits: bus.StopBits, timeout: bus.Timeout,
	})
	if err != nil {
		return nil, "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), bus.Timeout)
	defer cancel()
	if err := l.connect(ctx); err != nil {
		return nil, "", fmt.Errorf("connect %s: %w", cfg.Controller, err)
	}
	return l, bus.Controller, nil
}

// isIllegalAddress says whether err is exception 2, the device's "no such register".
func isIllegalAddress(err error) bool {
	var mbErr *gridx.Error
	return errors.As(err, &mbErr) && mbErr.ExceptionCode == 2
}

// scanTable reads t from lo to hi and returns the runs of consecutive registers that answered.
func scanTable(ctx context.Context, l *link, cfg ScanConfig, t table, lo, hi int) ([]scanRun, error) {
	var runs []scanRun
	add := func(addr int, data []byte) {
		if n := len(runs); n > 0 && runs[n-1].table == t && runs[n-1].start+len(runs[n-1].first)/2 == addr {
			runs[n-1].first = append(runs[n-1].first, data...)
			return
		}
		runs = append(runs, scanRun{table: t, start: addr, first: slices.Clone(data)})
	}
	// A refused read says only that some register of it is missing. So the block halves on a
	// refusal, stays at one register through a gap (each missing register costs one read, the
	// least possible), and doubles again after every read that answers.
	block := cfg.Block
	for addr := lo; addr <= hi; {
		n := min(block, hi-addr+1)
		b, err := l.read(ctx, cfg.SlaveID, t, uint16(addr), uint16(n))
		switch {
		case err == nil:
			add(addr, b[:2*n])
			addr += n
			block = min(2*block, cfg.Block)
		case isIllegalAddress(err) && n > 1:
			block = n / 2
		case isIllegalAddress(err):
			addr++ // this register does not exist
		default:
			return nil, fmt.Errorf("read %s %s of slave %d: %w", t, span(addr, n), cfg.SlaveID, err)
		}
	}
	return runs, nil
}

// candidate is one decoding of a pair or quad of registers.
type candidate struct {
	table         table
	addr          int
	typ           dataType
	order         byteOrder
	first, second float64
	score         int
}

func writeScan(w io.Writer, cfg ScanConfig, controller string, runs []scanRun) error {
	fmt.Fprintf(w, "%s, slave %d: scanned %s in blocks of up to %d, read twice %s apart\n\n",
		controller, cfg.SlaveID, span(cfg.From, cfg.To-cfg.From+1), cfg.Block, cfg.Wait)
	if len(runs) == 0 {
		fmt.Fprintln(w, "no register answered: check the slave id, the register table and the address range")
		return nil
	}
	base := func(a int) int { return a + cfg.AddressBase }
	for _, r := range runs {
		n := len(r.first) / 2
		fmt.Fprintf(w, "%s registers %s answer (%d)\n", r.table, span(base(r.start), n), n)
	}
	fmt.Fprintln(w)
	var totals, flows []candidate
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "table\taddress\ttype\torder\tvalue\t×0.1\t×0.01\t×0.001\tsecond read\t")
	wide := []dataType{typeInt32, typeUint32, typeFloat32, typeInt64, typeUint64, typeFloat64}
	for _, r := range runs {
		n := len(r.first) / 2
		for off := range n {
			for _, typ := range wide {
				width := typ.width()
				if off+width > n {
					continue
				}
				for o := range orderNames {
					c := candidate{
						table: r.table, addr: base(r.start + off), typ: typ, order: byteOrder(o),
						first:  valueOf(typ, rawBits(r.first[2*off:], width, byteOrder(o))),
						second: valueOf(typ, rawBits(r.second[2*off:], width, byteOrder(o))),
					}
					raw := formatBits(typ, rawBits(r.first[2*off:], width, byteOrder(o)))
					fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", c.table, c.addr, typ, c.order, raw,
						scaledText(typ, c.first, 0.1), scaledText(typ, c.first, 0.01), scaledText(typ, c.first, 0.001),
						formatBits(typ, rawBits(r.second[2*off:], width, byteOrder(o))))
					if s := totalScore(c); s > 0 {
						c.score = s
						totals = append(totals, c)
					}
					if s := flowScore(c); s > 0 {
						c.score = s
						flows = append(flows, c)
					}
				}
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	rank := func(title string, cs []candidate) {
		slices.SortStableFunc(cs, func(a, b candidate) int { return b.score - a.score })
		fmt.Fprintf(w, "\n%s\n", title)
		if len(cs) == 0 {
			fmt.Fprintln(w, "  none")
			return
		}
		for i, c := range cs[:min(len(cs), 10)] {
			fmt.Fprintf(w, "  %2d. %s %d %s %s: %s then %s\n", i+1, c.table, c.addr, c.typ, c.order,
				strconv.FormatFloat(c.first, 'g', 10, 64), strconv.FormatFloat(c.second, 'g', 10, 64))
		}
	}
	// A pair that straddles the best flow candidate's registers is half a float and half
	// something else: rank it below the pairs that stand alone.
	if len(flows) > 0 {
		best := slices.MaxFunc(flows, func(a, b candidate) int { return a.score - b.score })
		for i := range totals {
			c := &totals[i]
			if c.table == best.table && c.addr < best.addr+best.typ.width() && best.addr < c.addr+c.typ.width() &&
				(c.addr != best.addr || c.typ.width() != best.typ.width()) {
				c.score -= 25
			}
		}
	}
	rank("totalizer candidates (non-negative, not decreasing between the reads; rising first):", totals)
	rank("flow candidates (small non-negative floats):", flows)
	return nil
}

func scaledText(t dataType, v, scale float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	if t == typeFloat32 || t == typeFloat64 {
		return strconv.FormatFloat(v*scale, 'g', 8, 64)
	}
	return strconv.FormatFloat(scaled(typeFloat64, math.Float64bits(v), scale, 0), 'f', -1, 64)
}

// totalScore rates c as a totalizer: 0 rules it out. A value that rose between the reads beats
// one that stayed, and a small step beats a large one (a wrong word order moves the high digits);
// integers beat floats, as most totalizers are integer registers with a scale; the common word
// orders (ABCD, CDAB) beat byte-swapped ones.
func totalScore(c candidate) int {
	a, b := c.first, c.second
	if math.IsNaN(a) || math.IsInf(a, 0) || math.IsNaN(b) || math.IsInf(b, 0) || a < 0 || b < a || b >= 1e12 {
		return 0
	}
	isFloat := c.typ == typeFloat32 || c.typ == typeFloat64
	if isFloat && (tiny(a) || tiny(b)) {
		return 0 // denormal-looking garbage: integer bits read as a float
	}
	s := 10
	if b > a {
		s += 40 + int(min(30, max(0, 30-3*math.Log10(b-a))))
	}
	if a > 0 {
		s += 5
	}
	switch c.typ {
	case typeUint32:
		s += 17
	case typeInt32, typeUint64, typeInt64:
		s += 15
	case typeFloat32:
		s += 5
	case typeFloat64:
		s += 3
	}
	if c.order == orderABCD || c.order == orderCDAB {
		s += 3
	}
	return s
}

// tiny says a float is non-zero but too small to be a meter's reading.
func tiny(v float64) bool { return v != 0 && math.Abs(v) < 1e-3 }

// flowScore rates c as a flow rate: a float between 0 and 100 000 (m³/h) that does not look
// like two integers read as one.
func flowScore(c candidate) int {
	if c.typ != typeFloat32 && c.typ != typeFloat64 {
		return 0
	}
	a, b := c.first, c.second
	if math.IsNaN(a) || math.IsInf(a, 0) || math.IsNaN(b) || a < 0 || a > 1e5 || tiny(a) || b < 0 || b > 1e5 || tiny(b) {
		return 0
	}
	s := 10
	if a > 0 {
		s += 20
	}
	if a != b {
		s += 5 // flow moves
	}
	if c.typ == typeFloat32 {
		s += 5
	}
	if c.order == orderABCD || c.order == orderCDAB {
		s += 3
	}
	return s
}
