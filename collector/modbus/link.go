package modbus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"strings"
	"syscall"
	"time"

	gridx "github.com/grid-x/modbus"
	"github.com/grid-x/serial"
)

// link is the one connection of a bus, over any transport. It is not safe for concurrent use:
// its owner serialises every call, which is what a shared RS-485 line or gateway needs.
type link struct {
	handler gridx.ClientHandler
	client  gridx.Client
	open    bool
}

// linkConfig is what a link needs from a Config or a ProbeConfig.
type linkConfig struct {
	transport, controller string
	baudRate, dataBits    int
	parity                string
	stopBits              int
	timeout               time.Duration
}

func newLink(c linkConfig) (*link, error) {
	var h gridx.ClientHandler
	dial := (&net.Dialer{Timeout: c.timeout}).DialContext
	switch c.transport {
	case TransportTCP:
		addr, err := tcpAddress(c.controller)
		if err != nil {
			return nil, err
		}
		th := gridx.NewTCPClientHandler(addr, gridx.WithDialer(dial))
		th.Timeout = c.timeout
		// A negative idle timeout keeps grid-x from closing (and silently re-dialling) the
		// connection behind our back: the Source alone decides when the socket opens and closes,
		// so that every open is followed by the pause after connect and is counted.
		th.IdleTimeout = -1
		h = th
	case TransportRTUOverTCP:
		addr, err := tcpAddress(c.controller)
		if err != nil {
			return nil, err
		}
		th := gridx.NewRTUOverTCPClientHandler(addr)
		th.Dial = dial
		th.Timeout = c.timeout
		th.IdleTimeout = -1
		h = th
	case TransportRTU:
		dev := serialDevice(c.controller)
		if dev == "" {
			return nil, fmt.Errorf("%q is not a serial device", c.controller)
		}
		sh := gridx.NewRTUClientHandler(dev)
		sh.BaudRate = c.baudRate
		sh.DataBits = c.dataBits
		sh.Parity = c.parity
		sh.StopBits = c.stopBits
		sh.Timeout = c.timeout
		sh.IdleTimeout = 0 // serial ports: zero disables the idle close
		h = sh
	default:
		return nil, fmt.Errorf("transport %q is not one of tcp, rtu, rtu_over_tcp", c.transport)
	}
	return &link{handler: h, client: gridx.NewClient(h)}, nil
}

func (l *link) connect(ctx context.Context) error {
	if l.open {
		return nil
	}
	if err := l.handler.Connect(ctx); err != nil {
		return err
	}
	l.open = true
	return nil
}

func (l *link) close() {
	if l.open {
		_ = l.handler.Close()
		l.open = false
	}
}

// read sends one read request and returns the response's data: 2·count bytes of registers, or
// ⌈count/8⌉ bytes of packed bits. A short answer is a decode error, never a shorter result.
func (l *link) read(ctx context.Context, slave byte, t table, addr, count uint16) ([]byte, error) {
	l.handler.SetSlave(slave)
	var (
		data []byte
		err  error
		want int
	)
	switch t {
	case tableHolding:
		data, err = l.client.ReadHoldingRegisters(ctx, addr, count)
		want = 2 * int(count)
	case tableInput:
		data, err = l.client.ReadInputRegisters(ctx, addr, count)
		want = 2 * int(count)
	case tableCoil:
		data, err = l.client.ReadCoils(ctx, addr, count)
		want = (int(count) + 7) / 8
	case tableDiscrete:
		data, err = l.client.ReadDiscreteInputs(ctx, addr, count)
		want = (int(count) + 7) / 8
	default:
		return nil, fmt.Errorf("read table %v: unknown table", t)
	}
	if err != nil {
		return nil, err
	}
	if len(data) < want {
		return nil, &gridx.DataSizeError{ExpectedBytes: want, ActualBytes: len(data)}
	}
	return data, nil
}

// classify sorts a request error into one of the Kind constants. Only an exception leaves the
// connection usable: after anything else the stream may hold a late or partial answer.
func classify(err error) string {
	var mbErr *gridx.Error
	var netErr net.Error
	switch {
	case errors.As(err, &mbErr):
		return KindException
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, serial.ErrTimeout),
		errors.As(err, &netErr) && netErr.Timeout():
		return KindTimeout
	case strings.Contains(err.Error(), "within deadline"):
		// grid-x's RTU reader gives up with a plain errors.New when its deadline passes.
		return KindTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNREFUSED),
		errors.As(err, new(*net.OpError)), errors.As(err, new(*fs.PathError)), errors.As(err, new(syscall.Errno)):
		return KindIO
	}
	return KindDecode
}

// exceptionName is the standard name of a Modbus exception code.
func exceptionName(code byte) string {
	switch code {
	case 1:
		return "illegal function"
	case 2:
		return "illegal data address"
	case 3:
		return "illegal data value"
	case 4:
		return "server device failure"
	case 5:
		return "acknowledge"
	case 6:
		return "server device busy"
	case 8:
		return "memory parity error"
	case 10:
		return "gateway path unavailable"
	case 11:
		return "gateway target device failed to respond"
	}
	return "unknown exception"
}
