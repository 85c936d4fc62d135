package modbus

import (
	"errors"
	"fmt"
	"strings"
)

// ExceptionError is a Modbus exception: the device understood the request and refused it.
type ExceptionError struct {
	SlaveID  byte
	Function byte // the read function code: 1 coils, 2 discrete inputs, 3 holding, 4 input registers
	Code     byte // 2 = illegal data address, 11 = gateway target failed to respond, ...
}

func (e *ExceptionError) Error() string {
	return fmt.Sprintf("modbus exception %d (%s) from slave %d", e.Code, exceptionName(e.Code), e.SlaveID)
}

// RequestError is a failed read of one request of a poll; every point it carried is marked Bad
// with its text. Err is an *ExceptionError for exceptions, else the transport's error.
type RequestError struct {
	Kind        string // KindTimeout, KindException, KindIO, KindDecode
	SlaveID     byte
	Register    string // holding, input, coil, discrete
	Address     uint16 // protocol address of the first register
	Count       uint16
	AddressBase int  // the bus's address_base, so the message can give register numbers too
	Gaps        bool // the request read through registers no point asked for
	Err         error
}

// Error names the slave, the table and both numberings of the range, because "illegal data
// address" is usually a 0- versus 1-based mix-up and the operator must see both to spot it:
//
//	modbus exception 2 (illegal data address): slave 3, holding address 100..109 (register 101..110)
//	read slave 3 holding address 100..109 (register 101..110): i/o timeout
func (e *RequestError) Error() string {
	var b strings.Builder
	var exc *ExceptionError
	if errors.As(e.Err, &exc) {
		fmt.Fprintf(&b, "modbus exception %d (%s): slave %d, %s address %s",
			exc.Code, exceptionName(exc.Code), e.SlaveID, e.Register, span(int(e.Address), int(e.Count)))
	} else {
		fmt.Fprintf(&b, "read slave %d %s address %s", e.SlaveID, e.Register, span(int(e.Address), int(e.Count)))
	}
	if e.AddressBase == 1 {
		fmt.Fprintf(&b, " (register %s)", span(int(e.Address)+1, int(e.Count)))
	}
	if exc != nil {
		if exc.Code == 2 && e.Gaps {
			b.WriteString("; the read spans registers no point uses, which some devices refuse: try max_gap: -1")
		}
		return b.String()
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

func (e *RequestError) Unwrap() error { return e.Err }
