package modbus

import (
	"cmp"
	"fmt"
	"slices"
)

// table is a Modbus data table; its value is the read function code.
type table uint8

const (
	tableCoil     table = 1
	tableDiscrete table = 2
	tableHolding  table = 3
	tableInput    table = 4
)

func (t table) String() string {
	switch t {
	case tableCoil:
		return RegisterCoil
	case tableDiscrete:
		return RegisterDiscrete
	case tableHolding:
		return RegisterHolding
	case tableInput:
		return RegisterInput
	}
	return fmt.Sprintf("table(%d)", uint8(t))
}

func (t table) bits() bool { return t == tableCoil || t == tableDiscrete }

func parseTable(s string) (table, bool) {
	switch s {
	case RegisterCoil:
		return tableCoil, true
	case RegisterDiscrete:
		return tableDiscrete, true
	case RegisterHolding:
		return tableHolding, true
	case RegisterInput:
		return tableInput, true
	}
	return 0, false
}

// field is one configured point, resolved: where its value lives and how to turn it into a number.
type field struct {
	meter, point int // indexes into the poll's readings and their points
	slave        byte
	table        table
	addr         uint16 // protocol address
	width        uint16 // registers, or 1 for a bit
	typ          dataType
	order        byteOrder
	scale        float64
	offset       float64
}

func (f *field) end() int { return int(f.addr) + int(f.width) }

// request is one read: a contiguous range of one table of one slave and the fields it carries.
type request struct {
	slave  byte
	table  table
	addr   uint16 // protocol address of the first register
	count  uint16
	fields []field
	gaps   bool // the range includes registers no field asks for
}

// Request describes one read of a poll's plan.
type Request struct {
	SlaveID  byte
	Register string // holding, input, coil, discrete
	Address  uint16 // protocol address of the first register or bit
	Count    uint16
	Points   int // points served by this read
}

// String is "slave 1 holding 0..9 (4 points)".
func (r Request) String() string {
	unit := "points"
	if r.Points == 1 {
		unit = "point"
	}
	return fmt.Sprintf("slave %d %s %s (%d %s)", r.SlaveID, r.Register, span(int(r.Address), int(r.Count)), r.Points, unit)
}

// span is "a..b" for a range and "a" for a single address.
func span(addr, count int) string {
	if count <= 1 {
		return fmt.Sprint(addr)
	}
	return fmt.Sprintf("%d..%d", addr, addr+count-1)
}

// planRequests groups fields per slave and table, sorts them by address and merges neighbours
// into as few reads as the limits allow: a field joins the current read when the registers
// between the read's end and the field's start number at most maxGap (negative: never a gap,
// only contiguous or overlapping fields) and the read stays within its size limit. Requests come
// out ordered by slave, table and address.
func planRequests(fields []field, maxRegisters, maxGap int, onePerField bool) []request {
	sorted := slices.Clone(fields)
	slices.SortStableFunc(sorted, func(a, b field) int {
		return cmp.Or(
			cmp.Compare(a.slave, b.slave),
			cmp.Compare(a.table, b.table),
			cmp.Compare(a.addr, b.addr),
			cmp.Compare(a.width, b.width),
		)
	})
	regLimit := min(max(maxRegisters, 1), maxRegistersPerRequest)
	var reqs []request
	var cur *request
	curEnd := 0
	for _, f := range sorted {
		limit := regLimit
		if f.table.bits() {
			limit = maxBitsPerRequest
		}
		if cur != nil && !onePerField && cur.slave == f.slave && cur.table == f.table {
			gap := int(f.addr) - curEnd
			newEnd := max(curEnd, f.end())
			if gap <= max(maxGap, 0) && newEnd-int(cur.addr) <= limit {
				cur.fields = append(cur.fields, f)
				if gap > 0 {
					cur.gaps = true
				}
				curEnd = newEnd
				cur.count = uint16(curEnd - int(cur.addr))
				continue
			}
		}
		reqs = append(reqs, request{slave: f.slave, table: f.table, addr: f.addr, count: f.width, fields: []field{f}})
		cur = &reqs[len(reqs)-1]
		curEnd = f.end()
	}
	return reqs
}
