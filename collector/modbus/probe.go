package modbus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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
	bus := Config{
		Transport: cfg.Transport, Controller: cfg.Controller, BaudRate: cfg.BaudRate, DataBits: cfg.DataBits,
		Parity: cfg.Parity, StopBits: cfg.StopBits, Timeout: cfg.Timeout,
	}
	bus.Default()
	if cfg.Register == "" {
		cfg.Register = RegisterHolding
	}
	if cfg.Count == 0 {
		cfg.Count = 10
	}
	t, ok := parseTable(strings.ToLower(cfg.Register))
	if !ok || t.bits() {
		return fmt.Errorf("probe: register %q is not holding or input", cfg.Register)
	}
	if cfg.AddressBase != 0 && cfg.AddressBase != 1 {
		return fmt.Errorf("probe: address base %d is not 0 or 1", cfg.AddressBase)
	}
	start := int(cfg.Address) - cfg.AddressBase
	if start < 0 || cfg.Count < 1 || start+cfg.Count > 0x10000 {
		return fmt.Errorf("probe: %d registers from address %d do not fit in 0..65535", cfg.Count, start)
	}
	l, err := newLink(linkConfig{
		transport: bus.Transport, controller: bus.Controller, baudRate: bus.BaudRate, dataBits: bus.DataBits,
		parity: bus.Parity, stopBits: bus.StopBits, timeout: bus.Timeout,
	})
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	if err := l.connect(ctx); err != nil {
		return fmt.Errorf("probe: connect %s: %w", cfg.Controller, err)
	}
	defer l.close()
	data := make([]byte, 0, 2*cfg.Count)
	for off := 0; off < cfg.Count; off += maxRegistersPerRequest {
		n := min(cfg.Count-off, maxRegistersPerRequest)
		addr := uint16(start + off)
		b, err := l.read(ctx, cfg.SlaveID, t, addr, uint16(n))
		if err != nil {
			rerr := &RequestError{
				Kind: classify(err), SlaveID: cfg.SlaveID, Register: t.String(), Address: addr, Count: uint16(n),
				AddressBase: cfg.AddressBase, Err: err,
			}
			var mbErr *gridx.Error
			if errors.As(err, &mbErr) {
				rerr.Err = &ExceptionError{SlaveID: cfg.SlaveID, Function: byte(t), Code: mbErr.ExceptionCode}
			}
			return fmt.Errorf("probe: %w", rerr)
		}
		data = append(data, b[:2*n]...)
	}
	return writeProbe(w, cfg, bus.Controller, t, start, data)
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
