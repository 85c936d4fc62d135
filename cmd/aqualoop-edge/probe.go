package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aqualoop/aqualoop/collector/modbus"
)

func cmdProbe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("probe", "[--controller URL] [--slave N] [--address A --count N | --scan --from A --to B]", stderr)
	var c modbus.ProbeConfig
	var slave, address uint
	fs.StringVar(&c.Controller, "controller", "tcp://127.0.0.1:502", `"tcp://host:port" or a serial device such as /dev/ttyUSB0`)
	fs.StringVar(&c.Transport, "transport", "", "tcp, rtu or rtu_over_tcp (default: from the controller)")
	fs.IntVar(&c.BaudRate, "baud", modbus.DefaultBaudRate, "serial baud rate")
	fs.IntVar(&c.DataBits, "data-bits", 8, "serial data bits")
	fs.StringVar(&c.Parity, "parity", "N", "serial parity N, E or O")
	fs.IntVar(&c.StopBits, "stop-bits", 1, "serial stop bits")
	fs.UintVar(&slave, "slave", 1, "slave (unit) id")
	fs.StringVar(&c.Register, "register", modbus.RegisterHolding, "holding or input (with --scan: holding,input scans both)")
	fs.UintVar(&address, "address", 0, "first register, in the address base")
	fs.IntVar(&c.Count, "count", 10, "number of registers (a count past the device's end is cut there, with a hint)")
	fs.IntVar(&c.AddressBase, "address-base", 0, "0: protocol addresses; 1: register numbers as printed in manuals (1 is address 0)")
	fs.DurationVar(&c.Timeout, "timeout", 2*time.Second, "per request")
	scan := fs.Bool("scan", false, "map the registers the device has from --from to --to, in blocks that shrink on exception 2, and rank totalizer and flow candidates")
	from := fs.Int("from", 0, "with --scan: first address, in the address base")
	to := fs.Int("to", 999, "with --scan: last address, in the address base")
	block := fs.Int("block", 125, "with --scan: registers per read to start with")
	wait := fs.Duration("wait", 2*time.Second, "with --scan: time between the two reads that tell a totalizer (it counts up) from a constant")
	if err := parse(fs, args, stdout); err != nil {
		return err
	}
	if slave > 247 {
		return fmt.Errorf("--slave %d is not a Modbus unit id (0..247)", slave)
	}
	if address > 65535 {
		return fmt.Errorf("--address %d is beyond 65535", address)
	}
	c.SlaveID, c.Address = byte(slave), uint16(address)
	if *scan {
		tables := []string{modbus.RegisterHolding, modbus.RegisterInput}
		if explicit(fs, "register") {
			tables = strings.Split(c.Register, ",")
		}
		return modbus.Scan(ctx, modbus.ScanConfig{ProbeConfig: c, Tables: tables, From: *from, To: *to, Block: *block, Wait: *wait}, stdout)
	}
	return modbus.Probe(ctx, c, stdout)
}

// explicit says whether the flag was given on the command line.
func explicit(fs *flag.FlagSet, name string) bool {
	found := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			found = true
		}
	})
	return found
}
