package modbus

import (
	"fmt"
	"strings"
	"time"

	"github.com/aqualoop/aqualoop/collector/config"
	"github.com/aqualoop/aqualoop/collector/wire"
)

// Transports.
const (
	TransportTCP        = "tcp"          // Modbus TCP (MBAP header), to a device or a gateway
	TransportRTU        = "rtu"          // Modbus RTU on a local serial line (RS-485/RS-232)
	TransportRTUOverTCP = "rtu_over_tcp" // RTU frames over a TCP socket, as serial device servers forward them
)

// Register tables.
const (
	RegisterHolding  = "holding"
	RegisterInput    = "input"
	RegisterCoil     = "coil"
	RegisterDiscrete = "discrete"
)

// Protocol limits per request (Modbus application protocol v1.1b, function codes 1 to 4).
const (
	maxRegistersPerRequest = 125
	maxBitsPerRequest      = 2000
)

// Defaults, applied by Config.Default to fields left at zero.
const (
	DefaultInterval     = 10 * time.Second
	DefaultTimeout      = time.Second
	DefaultMaxRegisters = maxRegistersPerRequest
	DefaultMaxGap       = 10
	DefaultBaudRate     = 9600
	DefaultPort         = "502"
)

// Config is one physical bus or gateway: one connection, one goroutine, requests one after the
// other. YAML keys follow Telegraf's modbus input where the meaning is the same.
type Config struct {
	Name       string `yaml:"name"`
	Transport  string `yaml:"transport"`  // tcp | rtu | rtu_over_tcp; inferred from controller when empty
	Controller string `yaml:"controller"` // "tcp://host:port" or a serial device such as "/dev/ttyUSB0"

	// Serial line settings (transport rtu).
	BaudRate int    `yaml:"baud_rate"` // default 9600
	DataBits int    `yaml:"data_bits"` // default 8
	Parity   string `yaml:"parity"`    // N | E | O, default N
	StopBits int    `yaml:"stop_bits"` // default 1

	Interval time.Duration `yaml:"interval"` // between polls, default 10s
	Timeout  time.Duration `yaml:"timeout"`  // per request (and per connect), default 1s

	// AddressBase says how the points' addresses are written: 0 (default) for protocol addresses,
	// 1 for register numbers as printed in many manuals (register 1 is protocol address 0).
	AddressBase int `yaml:"address_base"`
	// MaxRegisters bounds one read of holding or input registers: default and protocol limit 125.
	// Coils and discrete inputs are read up to 2000 at a time.
	MaxRegisters int `yaml:"max_registers"`
	// MaxGap is how many unused registers a read may span to merge two groups of points into one
	// request: 0 means the default 10, -1 merges only contiguous points (for devices that answer
	// "illegal data address" when a read touches an undefined register).
	MaxGap int `yaml:"max_gap"`
	// OnePerField reads every point with a request of its own, for devices that reject
	// multi-register reads.
	OnePerField bool `yaml:"one_request_per_field"`

	// PauseAfterConnect and PauseBetweenRequests give slow devices and serial gateways time to
	// settle. CloseAfterPoll releases the socket of devices that accept a single connection.
	PauseAfterConnect    time.Duration `yaml:"pause_after_connect"`
	PauseBetweenRequests time.Duration `yaml:"pause_between_requests"`
	CloseAfterPoll       bool          `yaml:"close_connection_after_poll"`

	Meters []Meter `yaml:"meters"`
}

// Meter is one water meter: one Reading per poll, carrying all its points. Several meters may
// share a slave id (a multi-channel device); their points are then read together.
type Meter struct {
	Meter   string  `yaml:"meter"`
	SlaveID byte    `yaml:"slave_id"`
	Points  []Point `yaml:"points"`
}

// Point is one value of a meter. Value = raw · scale + offset.
type Point struct {
	Name      string  `yaml:"name"`
	Register  string  `yaml:"register"`   // holding (default) | input | coil | discrete
	Address   uint16  `yaml:"address"`    // in the bus's address_base
	Type      string  `yaml:"type"`       // INT16 UINT16 INT32 UINT32 INT64 UINT64 FLOAT32 FLOAT64; BOOL (default for coil, discrete)
	ByteOrder string  `yaml:"byte_order"` // ABCD (default) | CDAB | BADC | DCBA
	Scale     float64 `yaml:"scale"`      // 0 means 1
	Offset    float64 `yaml:"offset"`
	Unit      string  `yaml:"unit"`
}

// Default fills every field left at its zero value. It only touches zero fields, so it can run
// before decoding (as config.Parse does) or after it, and New runs it again on its own copy: a
// Config embedded in a larger file works whether or not its parent calls Default.
func (c *Config) Default() {
	if c.Transport == "" {
		c.Transport = inferTransport(c.Controller)
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxRegisters == 0 {
		c.MaxRegisters = DefaultMaxRegisters
	}
	if c.MaxGap == 0 {
		c.MaxGap = DefaultMaxGap
	}
	if c.BaudRate == 0 {
		c.BaudRate = DefaultBaudRate
	}
	if c.DataBits == 0 {
		c.DataBits = 8
	}
	if c.Parity == "" {
		c.Parity = "N"
	}
	c.Parity = strings.ToUpper(c.Parity)
	if c.StopBits == 0 {
		c.StopBits = 1
	}
	for i := range c.Meters {
		for j := range c.Meters[i].Points {
			c.Meters[i].Points[j].defaults()
		}
	}
}

func (p *Point) defaults() {
	if p.Register == "" {
		p.Register = RegisterHolding
	}
	p.Register = strings.ToLower(p.Register)
	if p.Type == "" && (p.Register == RegisterCoil || p.Register == RegisterDiscrete) {
		p.Type = "BOOL"
	}
	p.Type = strings.ToUpper(p.Type)
	if p.ByteOrder == "" {
		p.ByteOrder = "ABCD"
	}
	p.ByteOrder = strings.ToUpper(p.ByteOrder)
	if p.Scale == 0 {
		p.Scale = 1
	}
}

func inferTransport(controller string) string {
	switch {
	case strings.HasPrefix(controller, "tcp://"):
		return TransportTCP
	case strings.HasPrefix(controller, "file://"), strings.HasPrefix(controller, "/"):
		return TransportRTU
	}
	return ""
}

// Validate adds every problem of c to p, each under path (for example "modbus[0]"). It accepts
// fields left at zero wherever Default gives them a value, so it may run before or after Default.
func (c *Config) Validate(p *config.Problems, path string) {
	c.check(path, p.Addf)
}

// addFunc records one problem; config.Problems.Addf is one.
type addFunc func(path, format string, args ...any)

// join appends a key to a path that may be empty.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (c *Config) check(path string, add addFunc) {
	d := *c
	d.Meters = nil
	d.Default()
	if c.Name == "" {
		add(join(path, "name"), "is required: it names the bus in logs, metrics and /healthz")
	}
	switch d.Transport {
	case TransportTCP, TransportRTUOverTCP:
		if _, err := tcpAddress(c.Controller); err != nil {
			add(join(path, "controller"), "%v", err)
		}
	case TransportRTU:
		if serialDevice(c.Controller) == "" {
			add(join(path, "controller"), "%q is not a serial device such as /dev/ttyUSB0", c.Controller)
		}
		if _, ok := serialBaudRates[d.BaudRate]; !ok {
			add(join(path, "baud_rate"), "%d is not a standard baud rate", d.BaudRate)
		}
		if d.DataBits < 5 || d.DataBits > 8 {
			add(join(path, "data_bits"), "%d is not 5, 6, 7 or 8", d.DataBits)
		}
		if d.Parity != "N" && d.Parity != "E" && d.Parity != "O" {
			add(join(path, "parity"), "%q is not one of N, E, O", c.Parity)
		}
		if d.StopBits != 1 && d.StopBits != 2 {
			add(join(path, "stop_bits"), "%d is not 1 or 2", d.StopBits)
		}
	case "":
		add(join(path, "transport"), "is required when controller %q is neither tcp://host:port nor a serial device", c.Controller)
	default:
		add(join(path, "transport"), "%q is not one of tcp, rtu, rtu_over_tcp", c.Transport)
	}
	if d.Interval < 0 {
		add(join(path, "interval"), "%v is negative", c.Interval)
	}
	if d.Timeout < 0 {
		add(join(path, "timeout"), "%v is negative", c.Timeout)
	}
	if c.PauseAfterConnect < 0 {
		add(join(path, "pause_after_connect"), "%v is negative", c.PauseAfterConnect)
	}
	if c.PauseBetweenRequests < 0 {
		add(join(path, "pause_between_requests"), "%v is negative", c.PauseBetweenRequests)
	}
	if c.AddressBase != 0 && c.AddressBase != 1 {
		add(join(path, "address_base"), "%d is not 0 (protocol addresses) or 1 (register numbers)", c.AddressBase)
	}
	if d.MaxRegisters < 1 {
		add(join(path, "max_registers"), "%d is less than 1", c.MaxRegisters)
	}
	if d.MaxGap < -1 {
		add(join(path, "max_gap"), "%d is less than -1 (merge contiguous points only)", c.MaxGap)
	}
	if len(c.Meters) == 0 {
		add(join(path, "meters"), "is empty: a bus without meters reads nothing")
	}
	for i := range c.Meters {
		c.Meters[i].check(join(path, fmt.Sprintf("meters[%d]", i)), &d, add)
	}
}

func (m *Meter) check(path string, bus *Config, add addFunc) {
	if !wire.ValidID(m.Meter) {
		add(join(path, "meter"), "%q is not a valid meter id (letters, digits, '-', '_', '.')", m.Meter)
	}
	if bus.Transport != TransportTCP && (m.SlaveID < 1 || m.SlaveID > 247) {
		add(join(path, "slave_id"), "%d is outside 1..247, the slave addresses of a serial line", m.SlaveID)
	}
	if len(m.Points) == 0 {
		add(join(path, "points"), "is empty: the meter would read nothing")
	}
	names := make(map[string]int, len(m.Points))
	for i := range m.Points {
		pp := join(path, fmt.Sprintf("points[%d]", i))
		pt := m.Points[i]
		pt.defaults()
		if pt.Name == "" {
			add(join(pp, "name"), "is required")
		} else if j, dup := names[pt.Name]; dup {
			add(join(pp, "name"), "%q is already the name of points[%d]", pt.Name, j)
		} else {
			names[pt.Name] = i
		}
		t, typeOK := parseType(pt.Type)
		isBit := pt.Register == RegisterCoil || pt.Register == RegisterDiscrete
		switch pt.Register {
		case RegisterHolding, RegisterInput, RegisterCoil, RegisterDiscrete:
			switch {
			case pt.Type == "" && !isBit:
				add(join(pp, "type"), "is required for %s registers: one of INT16, UINT16, INT32, UINT32, INT64, UINT64, FLOAT32, FLOAT64", pt.Register)
			case !typeOK:
				add(join(pp, "type"), "%q is not one of %s", m.Points[i].Type, strings.Join(typeNames[:], ", "))
			case isBit && t != typeBool:
				add(join(pp, "type"), "%s for a %s: coils and discrete inputs are BOOL", pt.Type, pt.Register)
			case !isBit && t == typeBool:
				add(join(pp, "type"), "BOOL is for coils and discrete inputs, not %s registers", pt.Register)
			}
		default:
			add(join(pp, "register"), "%q is not one of holding, input, coil, discrete", m.Points[i].Register)
			typeOK = false
		}
		if _, ok := parseOrder(pt.ByteOrder); !ok {
			add(join(pp, "byte_order"), "%q is not one of ABCD, CDAB, BADC, DCBA", m.Points[i].ByteOrder)
		}
		if bus.AddressBase == 1 && pt.Address == 0 {
			add(join(pp, "address"), "0 is not a register number: with address_base 1, register 1 is protocol address 0")
		}
		if !typeOK {
			continue
		}
		w := t.width()
		first := int(pt.Address) - bus.AddressBase
		if last := first + w - 1; last > 0xFFFF {
			add(join(pp, "address"), "%d plus the %d registers of %s ends at protocol address %d, beyond 65535", pt.Address, w, t, last)
		}
		if !isBit && w > min(bus.MaxRegisters, maxRegistersPerRequest) {
			add(join(pp, "type"), "%s needs %d registers but max_registers is %d", t, w, bus.MaxRegisters)
		}
	}
}

// tcpAddress turns "tcp://host:port" (port defaults to 502) into "host:port".
func tcpAddress(controller string) (string, error) {
	rest, ok := strings.CutPrefix(controller, "tcp://")
	if !ok || rest == "" {
		return "", fmt.Errorf("%q is not tcp://host:port", controller)
	}
	if strings.ContainsAny(rest, "/?#@") {
		return "", fmt.Errorf("%q is not tcp://host:port", controller)
	}
	host, port := rest, DefaultPort
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && !strings.HasSuffix(rest, "]") {
		host, port = rest[:i], rest[i+1:]
	}
	if host == "" || port == "" {
		return "", fmt.Errorf("%q is not tcp://host:port", controller)
	}
	for _, c := range port {
		if c < '0' || c > '9' {
			return "", fmt.Errorf("%q has a port that is not a number", controller)
		}
	}
	return host + ":" + port, nil
}

// serialDevice turns "/dev/ttyUSB0" or "file:///dev/ttyUSB0" into the device path, or "".
func serialDevice(controller string) string {
	dev := strings.TrimPrefix(controller, "file://")
	if !strings.HasPrefix(dev, "/") || len(dev) < 2 {
		return ""
	}
	return dev
}

var serialBaudRates = map[int]struct{}{
	300: {}, 600: {}, 1200: {}, 2400: {}, 4800: {}, 9600: {}, 19200: {}, 38400: {}, 57600: {},
	115200: {}, 230400: {}, 460800: {}, 921600: {},
}
