package modbus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	gridx "github.com/grid-x/modbus"
)

// ProbeConfig is one register range to read once and show in every decoding.
type ProbeConfig struct {
	Transport  string // tcp | rtu | rtu_over_tcp; inferred from Controller when empty
	Controller string // "tcp://host:port" or "/dev/ttyUSB0"
	BaudRate   int    // serial settings, defaults as in Config
	DataBits   int
	Parity     string
	StopBits   int

	SlaveID     byte
	Register    string // holding (default) | input
	Address     uint16 // first register, in AddressBase
	Count       int    // registers to read, default 10; read 125 at a time
	AddressBase int    // 0: protocol addresses; 1: register numbers (1 is protocol address 0)
	Timeout     time.Duration
}

// Probe reads cfg's range and writes one block per start register: the raw words from there,
// then INT16 and UINT16, INT32, UINT32 and FLOAT32, and (while four registers remain) INT64,
// UINT64 and FLOAT64, each in the byte orders ABCD, CDAB, BADC and DCBA side by side. Somewhere
// in that table is the value the meter's display shows, and its row and column are the type and
// byte_order to configure.
func Probe(ctx context.Context, cfg ProbeConfig, w io.Writer) error {
	if cfg.Register == "" {
		cfg.Register = RegisterHolding
	}
	if cfg.Count == 0 {
		cfg.Count = 10
	}
	t, ok := parseTable(strings.ToLower(cfg.Register))
	if !ok || t.bits() {
		return fmt.Errorf("register %q is not holding or input", cfg.Register)
	}
	if cfg.AddressBase != 0 && cfg.AddressBase != 1 {
		return fmt.Errorf("address base %d is not 0 or 1", cfg.AddressBase)
	}
	start := int(cfg.Address) - cfg.AddressBase
	if start < 0 || cfg.Count < 1 || start+cfg.Count > 0x10000 {
		return fmt.Errorf("%d registers from address %d do not fit in 0..65535", cfg.Count, start)
	}
	l, controller, err := probeLink(cfg)
	if err != nil {
		return err
	}
	defer l.close()
	data := make([]byte, 0, 2*cfg.Count)
	hint := ""
	for off := 0; off < cfg.Count; {
		n := min(cfg.Count-off, maxRegistersPerRequest)
		addr := uint16(start + off)
		b, err := l.read(ctx, cfg.SlaveID, t, addr, uint16(n))
		if err != nil && isIllegalAddress(err) {
			// Often the count runs past the device's last register: find how far it answers.
			got, gerr := readableFrom(ctx, l, cfg.SlaveID, t, addr, n)
			if gerr == nil && len(got) > 0 {
				data = append(data, got...)
				end := start + len(data)/2
				hint = fmt.Sprintf("register %d and the %d after it refused (exception 2, illegal data address): the device ends at %d or has a gap there; try --count %d, or --scan to map the device",
					end+cfg.AddressBase, start+cfg.Count-end-1, end-1+cfg.AddressBase, len(data)/2)
				break
			}
		}
		if err != nil {
			rerr := &RequestError{
				Kind: classify(err), SlaveID: cfg.SlaveID, Register: t.String(), Address: addr, Count: uint16(n),
				AddressBase: cfg.AddressBase, Err: err,
			}
			var mbErr *gridx.Error
			if errors.As(err, &mbErr) {
				rerr.Err = &ExceptionError{SlaveID: cfg.SlaveID, Function: byte(t), Code: mbErr.ExceptionCode}
				if mbErr.ExceptionCode == 2 {
					return fmt.Errorf("%w; the first register does not exist: try another --address, or --scan to find the registers", rerr)
				}
			}
			return rerr
		}
		data = append(data, b[:2*n]...)
		off += n
	}
	if err := writeProbe(w, cfg, controller, t, start, data); err != nil {
		return err
	}
	if hint != "" {
		_, err := fmt.Fprintf(w, "\nnote: %s\n", hint)
		return err
	}
	return nil
}

// readableFrom finds, by bisection, the longest run of registers from addr (fewer than n, as n
// was refused) that the device reads, and returns their data: nil when not even addr reads.
func readableFrom(ctx context.Context, l *link, slave byte, t table, addr uint16, n int) ([]byte, error) {
	var best []byte
	lo, hi := 0, n // lo registers read, hi refused
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		b, err := l.read(ctx, slave, t, addr, uint16(mid))
		switch {
		case err == nil:
			lo, best = mid, slices.Clone(b[:2*mid])
		case isIllegalAddress(err):
			hi = mid
		default:
			return best, err
		}
	}
	return best, nil
}

// writeProbe prints the decodings of data, the registers read from protocol address start.
func writeProbe(w io.Writer, cfg ProbeConfig, controller string, t table, start int, data []byte) error {
	count := len(data) / 2
	fmt.Fprintf(w, "%s, slave %d, %s registers, address %s", controller, cfg.SlaveID, t, span(start, count))
	if cfg.AddressBase == 1 {
		fmt.Fprintf(w, " (register %s)", span(start+1, count))
	}
	fmt.Fprint(w, "\n\n")
	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "address\t"
	if cfg.AddressBase == 1 {
		head += "register\t"
	}
	head += "words\ttype\tABCD\tCDAB\tBADC\tDCBA\t"
	fmt.Fprintln(tw, head)
	// A blank line between blocks still carries every cell, so one alignment spans the table.
	blank := strings.Repeat("\t", strings.Count(head, "\t"))
	types := []dataType{typeInt16, typeUint16, typeInt32, typeUint32, typeFloat32, typeInt64, typeUint64, typeFloat64}
	for off := range count {
		first := true
		for _, typ := range types {
			n := typ.width()
			if off+n > count {
				continue
			}
			var row strings.Builder
			if first {
				fmt.Fprintf(&row, "%d\t", start+off)
				if cfg.AddressBase == 1 {
					fmt.Fprintf(&row, "%d\t", start+off+1)
				}
				words := make([]string, 0, 4)
				for i := off; i < min(off+4, count); i++ {
					words = append(words, fmt.Sprintf("%02X%02X", data[2*i], data[2*i+1]))
				}
				row.WriteString(strings.Join(words, " ") + "\t")
			} else {
				row.WriteString("\t")
				if cfg.AddressBase == 1 {
					row.WriteString("\t")
				}
				row.WriteString("\t")
			}
			first = false
			row.WriteString(typ.String() + "\t")
			for o := range orderNames {
				row.WriteString(formatBits(typ, rawBits(data[2*off:], n, byteOrder(o))) + "\t")
			}
			fmt.Fprintln(tw, row.String())
		}
		if off < count-1 {
			fmt.Fprintln(tw, blank)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// Right-aligned cells pad the blank separator lines; trim them so the output pastes cleanly.
	for line := range strings.Lines(table.String()) {
		if _, err := io.WriteString(w, strings.TrimRight(line, " \n")+"\n"); err != nil {
			return err
		}
	}
	return nil
}
