package modbus

import (
	"fmt"
	"slices"
	"testing"
)

func regField(slave byte, t table, addr, width uint16) field {
	return field{slave: slave, table: t, addr: addr, width: width}
}

func TestPlanRequests(t *testing.T) {
	contiguous := func(n int, t table) []field {
		var fs []field
		for i := range n {
			fs = append(fs, regField(1, t, uint16(i), 1))
		}
		return fs
	}
	tests := []struct {
		name         string
		fields       []field
		maxRegisters int
		maxGap       int
		onePerField  bool
		want         []string // "slave table addr+count"
	}{
		{
			name:   "overlapping points share one read",
			fields: []field{regField(1, tableHolding, 0, 2), regField(1, tableHolding, 1, 1), regField(1, tableHolding, 0, 4)},
			maxGap: 10, maxRegisters: 125,
			want: []string{"1 holding 0+4"},
		},
		{
			name:   "unsorted input, two slaves, two tables",
			fields: []field{regField(2, tableHolding, 5, 1), regField(1, tableInput, 0, 1), regField(1, tableHolding, 3, 2), regField(2, tableHolding, 0, 2)},
			maxGap: 10, maxRegisters: 125,
			want: []string{"1 holding 3+2", "1 input 0+1", "2 holding 0+6"},
		},
		{
			name:   "max_registers above 125 is clamped to the protocol limit",
			fields: contiguous(130, tableHolding), maxGap: 10, maxRegisters: 500,
			want: []string{"1 holding 0+125", "1 holding 125+5"},
		},
		{
			name:   "coils read 2000 at a time",
			fields: contiguous(2001, tableCoil), maxGap: 10, maxRegisters: 10,
			want: []string{"1 coil 0+2000", "1 coil 2000+1"},
		},
		{
			name:   "gap equal to max_gap merges, one more splits",
			fields: []field{regField(1, tableHolding, 0, 1), regField(1, tableHolding, 4, 1), regField(1, tableHolding, 9, 1)},
			maxGap: 3, maxRegisters: 125,
			want: []string{"1 holding 0+5", "1 holding 9+1"},
		},
		{
			name:   "max_gap -1 merges contiguous points only",
			fields: []field{regField(1, tableHolding, 0, 2), regField(1, tableHolding, 2, 2), regField(1, tableHolding, 5, 1)},
			maxGap: -1, maxRegisters: 125,
			want: []string{"1 holding 0+4", "1 holding 5+1"},
		},
		{
			name:   "one request per field",
			fields: []field{regField(1, tableHolding, 0, 2), regField(1, tableHolding, 2, 2)},
			maxGap: 10, maxRegisters: 125, onePerField: true,
			want: []string{"1 holding 0+2", "1 holding 2+2"},
		},
		{
			name:   "last register of the address space",
			fields: []field{regField(1, tableHolding, 65534, 2), regField(1, tableHolding, 65530, 1)},
			maxGap: 10, maxRegisters: 125,
			want: []string{"1 holding 65530+6"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reqs := planRequests(tt.fields, tt.maxRegisters, tt.maxGap, tt.onePerField)
			var got []string
			points := 0
			for _, r := range reqs {
				got = append(got, fmt.Sprintf("%d %s %d+%d", r.slave, r.table, r.addr, r.count))
				points += len(r.fields)
				for _, f := range r.fields {
					if f.addr < r.addr || f.end() > int(r.addr)+int(r.count) {
						t.Errorf("field at %d+%d outside its read %d+%d", f.addr, f.width, r.addr, r.count)
					}
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("plan = %q, want %q", got, tt.want)
			}
			if points != len(tt.fields) {
				t.Errorf("plan carries %d points, want %d", points, len(tt.fields))
			}
		})
	}
}
