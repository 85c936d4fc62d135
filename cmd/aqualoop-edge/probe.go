package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/aqualoop/aqualoop/collector/modbus"
)

func cmdProbe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c modbus.ProbeConfig
	var slave, address uint
	fs.StringVar(&c.Controller, "controller", "tcp://127.0.0.1:502", `"tcp://host:port" or a serial device such as /dev/ttyUSB0`)
	fs.StringVar(&c.Transport, "transport", "", "tcp, rtu or rtu_over_tcp (default: from the controller)")
	fs.IntVar(&c.BaudRate, "baud", 0, "serial baud rate (default 9600)")
	fs.IntVar(&c.DataBits, "data-bits", 0, "serial data bits (default 8)")
	fs.StringVar(&c.Parity, "parity", "", "serial parity N, E or O (default E)")
	fs.IntVar(&c.StopBits, "stop-bits", 0, "serial stop bits (default 1)")
	fs.UintVar(&slave, "slave", 1, "slave (unit) id")
	fs.StringVar(&c.Register, "register", "holding", "holding or input")
	fs.UintVar(&address, "address", 0, "first register, in the address base")
	fs.IntVar(&c.Count, "count", 10, "number of registers")
	fs.IntVar(&c.AddressBase, "address-base", 0, "0: protocol addresses; 1: register numbers as printed in manuals (1 is address 0)")
	fs.DurationVar(&c.Timeout, "timeout", 2*time.Second, "per request")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if slave > 247 {
		return fmt.Errorf("--slave %d is not a Modbus unit id (0..247)", slave)
	}
	if address > 65535 {
		return fmt.Errorf("--address %d is beyond 65535", address)
	}
	c.SlaveID, c.Address = byte(slave), uint16(address)
	return modbus.Probe(ctx, c, stdout)
}
