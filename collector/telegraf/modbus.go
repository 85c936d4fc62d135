package telegraf

import (
	"fmt"
	"strings"
	"time"

	"github.com/aqualoop/aqualoop/collector/modbus"
)

// modbus converts one [[inputs.modbus]]: one aqualoop bus; one meter per slave (register style:
// the input's one slave; request style: per slave id and measurement).
func (c *converter) modbus(i int, in modbusInput, interval time.Duration) {
	at := fmt.Sprintf("inputs.modbus[%d]", i)
	name := c.busName(in.Name, "modbus")
	bus := modbus.Config{
		Name:       name,
		Controller: in.Controller,
		BaudRate:   in.BaudRate, DataBits: in.DataBits, Parity: in.Parity, StopBits: in.StopBits,
		Timeout:  c.duration(at+".timeout", in.Timeout),
		Interval: interval,
	}
	if d := c.duration(at+".interval", in.Interval); d > 0 {
		bus.Interval = d
	}
	bus.Controller = strings.TrimPrefix(bus.Controller, "file://")
	switch strings.ToUpper(in.TransmissionMode) {
	case "", "AUTO":
	case "TCP":
		bus.Transport = modbus.TransportTCP
	case "RTU":
		bus.Transport = modbus.TransportRTU
	case "RTUOVERTCP":
		bus.Transport = modbus.TransportRTUOverTCP
	default:
		c.note("%s.transmission_mode: %q is not supported (aqualoop speaks TCP, RTU and RTU over TCP), bus %s left out", at, in.TransmissionMode, bus.Name)
		return
	}
	w := in.Workarounds
	bus.OnePerField = w.OnePerField
	bus.CloseAfterPoll = w.CloseAfter || in.CloseAfterGather
	bus.PauseAfterConnect = c.duration(at+".workarounds.pause_after_connect", firstOf(w.PauseAfter, in.PauseAfterConn))
	bus.PauseBetweenRequests = c.duration(at+".workarounds.pause_between_requests", firstOf(w.PauseBetw, in.PauseBetween))

	style := strings.ToLower(in.ConfigType)
	if style == "" {
		style = "register"
		if len(in.Requests) > 0 {
			style = "request"
		}
	}
	meters := map[string]int{}
	meterOf := func(id string, slave int) *modbus.Meter {
		key := fmt.Sprintf("%s/%d", id, slave)
		if k, ok := meters[key]; ok {
			return &bus.Meters[k]
		}
		name := id
		for _, m := range bus.Meters {
			if m.Meter == name {
				name = fmt.Sprintf("%s-%d", id, slave)
			}
		}
		bus.Meters = append(bus.Meters, modbus.Meter{Meter: name, SlaveID: byte(slave)})
		meters[key] = len(bus.Meters) - 1
		return &bus.Meters[len(bus.Meters)-1]
	}
	switch style {
	case "register":
		slave := 1
		if in.SlaveID != nil {
			slave = *in.SlaveID
		}
		m := meterOf(bus.Name, slave)
		for _, t := range []struct {
			key, register string
			fields        []registerField
		}{
			{"holding_registers", modbus.RegisterHolding, in.Holding},
			{"input_registers", modbus.RegisterInput, in.Input},
			{"coils", modbus.RegisterCoil, in.Coils},
			{"discrete_inputs", modbus.RegisterDiscrete, in.Discrete},
		} {
			for j, f := range t.fields {
				if p, ok := c.registerPoint(fmt.Sprintf("%s.%s[%d]", at, t.key, j), t.register, f); ok {
					m.Points = append(m.Points, p)
				}
			}
		}
	case "request":
		for j, r := range in.Requests {
			rat := fmt.Sprintf("%s.request[%d]", at, j)
			register := strings.ToLower(r.Register)
			if register == "" {
				register = modbus.RegisterHolding
			}
			order := strings.ToUpper(r.ByteOrder)
			if order == "" {
				order = "ABCD"
			}
			id := bus.Name
			if r.Measurement != "" {
				id = idOf(r.Measurement)
			}
			for k, f := range r.Fields {
				fat := fmt.Sprintf("%s.fields[%d]", rat, k)
				if f.Omit {
					continue
				}
				if f.Measurement != "" {
					c.note("%s.measurement: %q not mapped, the field stays with meter %s", fat, f.Measurement, id)
				}
				p, ok := c.requestPoint(fat, register, order, f)
				if ok {
					m := meterOf(id, r.SlaveID)
					m.Points = append(m.Points, p)
				}
			}
		}
	default:
		c.note("%s.configuration_type: %q not supported (register and request are)", at, in.ConfigType)
	}
	kept := bus.Meters[:0]
	for _, m := range bus.Meters {
		if len(m.Points) > 0 {
			kept = append(kept, m)
		}
	}
	bus.Meters = kept
	if len(bus.Meters) == 0 {
		c.note("%s: no field could be mapped, bus %s left out", at, bus.Name)
		return
	}
	c.res.Config.Modbus = append(c.res.Config.Modbus, bus)
}

func firstOf(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// registerPoint converts a register-style field: data_type and the length of its address list
// give the type; FIXED and UFIXED (and the deprecated FLOAT32) are integers with a scale.
func (c *converter) registerPoint(at, register string, f registerField) (modbus.Point, bool) {
	p := modbus.Point{Name: pointName(f.Name), Register: register, Scale: unitScale(f.Scale)}
	if len(f.Address) == 0 {
		c.note("%s: %q has no address, left out", at, f.Name)
		return p, false
	}
	for k := 1; k < len(f.Address); k++ {
		if f.Address[k] != f.Address[k-1]+1 {
			c.note("%s: %q has addresses %v that are not consecutive, left out", at, f.Name, f.Address)
			return p, false
		}
	}
	if f.Address[0] < 0 || f.Address[0] > 65535 {
		c.note("%s: address %d is not a register address, left out", at, f.Address[0])
		return p, false
	}
	p.Address = uint16(f.Address[0])
	if register == modbus.RegisterCoil || register == modbus.RegisterDiscrete {
		return p, true
	}
	n := len(f.Address)
	dt := strings.ToUpper(f.DataType)
	switch dt {
	case "FIXED", "UFIXED", "FLOAT32":
		prefix := "INT"
		if dt != "FIXED" {
			prefix = "UINT"
		}
		switch n {
		case 1, 2, 4:
			p.Type = fmt.Sprintf("%s%d", prefix, 16*n)
		default:
			c.note("%s: %s over %d registers has no aqualoop type, left out", at, dt, n)
			return p, false
		}
		if dt == "FLOAT32" {
			c.note("%s: data_type FLOAT32 is Telegraf's deprecated fixed-point type, mapped to %s with scale", at, p.Type)
		}
	case "FLOAT32-IEEE":
		p.Type = "FLOAT32"
	case "FLOAT64-IEEE":
		p.Type = "FLOAT64"
	case "INT16", "UINT16", "INT32", "UINT32", "INT64", "UINT64":
		p.Type = dt
	default:
		c.note("%s: data_type %q has no aqualoop equivalent, left out", at, f.DataType)
		return p, false
	}
	order, ok := byteOrder(f.ByteOrder)
	if !ok {
		c.note("%s: byte_order %q has no aqualoop equivalent, left out", at, f.ByteOrder)
		return p, false
	}
	p.ByteOrder = order
	if w := typeWidth(p.Type); w != n && !strings.HasSuffix(dt, "FIXED") && dt != "FLOAT32" {
		c.note("%s: %s needs %d registers but the address list has %d; the first address is used", at, p.Type, w, n)
	}
	return p, true
}

// requestPoint converts a request-style field.
func (c *converter) requestPoint(at, register, order string, f requestField) (modbus.Point, bool) {
	p := modbus.Point{Name: pointName(f.Name), Register: register, Scale: unitScale(f.Scale)}
	if f.Address < 0 || f.Address > 65535 {
		c.note("%s: address %d is not a register address, left out", at, f.Address)
		return p, false
	}
	p.Address = uint16(f.Address)
	if register == modbus.RegisterCoil || register == modbus.RegisterDiscrete {
		return p, true
	}
	switch t := strings.ToUpper(f.Type); t {
	case "INT16", "UINT16", "INT32", "UINT32", "INT64", "UINT64", "FLOAT32", "FLOAT64":
		p.Type = t
	case "":
		c.note("%s: %q has no type, left out", at, f.Name)
		return p, false
	default:
		c.note("%s: type %q has no aqualoop equivalent, left out", at, f.Type)
		return p, false
	}
	o, ok := byteOrder(order)
	if !ok {
		c.note("%s: byte_order %q has no aqualoop equivalent, left out", at, order)
		return p, false
	}
	p.ByteOrder = o
	return p, true
}

// byteOrder maps Telegraf's byte orders of one to four registers onto aqualoop's four, which
// name the order of the bytes of a 32-bit value and extend to 16 and 64 bits the same way.
func byteOrder(s string) (string, bool) {
	switch strings.ToUpper(s) {
	case "", "AB", "ABCD", "ABCDEFGH":
		return "ABCD", true
	case "BA", "BADC", "BADCFEHG":
		return "BADC", true
	case "CDAB", "GHEFCDAB":
		return "CDAB", true
	case "DCBA", "HGFEDCBA":
		return "DCBA", true
	}
	return "", false
}

func typeWidth(t string) int {
	switch t {
	case "INT16", "UINT16":
		return 1
	case "INT32", "UINT32", "FLOAT32":
		return 2
	}
	return 4
}

// pointName keeps Telegraf's field name, made a valid point name.
func pointName(s string) string {
	if n := idOf(s); n != "" {
		return n
	}
	return "value"
}

// unitScale leaves a scale of 1 out of the file: it is the default.
func unitScale(s float64) float64 {
	if s == 1 {
		return 0
	}
	return s
}
