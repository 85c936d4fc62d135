// Package telegraf converts the Modbus and OPC UA inputs of a Telegraf configuration into an
// aqualoop edge configuration, so a site that collected with Telegraf moves without typing its
// register maps again. What has no aqualoop equivalent is listed, never dropped silently.
//
// Telegraf's modbus input has two styles: the original "register" style (one slave per input,
// holding_registers, input_registers, coils and discrete_inputs lists whose fields carry
// byte_order, data_type, scale and an address list) and the "request" style
// ([[inputs.modbus.request]] blocks, each with slave_id, byte_order, register and fields with
// address, type and scale). Both address registers from 0, as aqualoop's address_base 0 does.
// Its opcua input polls nodes given by namespace, identifier_type and identifier, alone or in
// groups.
package telegraf

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/aqualoop/aqualoop/collector/edge"
	"github.com/aqualoop/aqualoop/collector/publish"
	"github.com/aqualoop/aqualoop/collector/spool"
)

// file is the part of telegraf.conf this package reads.
type file struct {
	Agent struct {
		Interval string `toml:"interval"`
		Hostname string `toml:"hostname"`
	} `toml:"agent"`
	Inputs struct {
		Modbus []modbusInput `toml:"modbus"`
		OPCUA  []opcuaInput  `toml:"opcua"`
	} `toml:"inputs"`
	Outputs struct {
		MQTT []struct {
			Servers []string `toml:"servers"`
		} `toml:"mqtt"`
	} `toml:"outputs"`
}

type modbusInput struct {
	Name             string `toml:"name"`
	SlaveID          *int   `toml:"slave_id"`
	Timeout          string `toml:"timeout"`
	Interval         string `toml:"interval"`
	Controller       string `toml:"controller"`
	BaudRate         int    `toml:"baud_rate"`
	DataBits         int    `toml:"data_bits"`
	Parity           string `toml:"parity"`
	StopBits         int    `toml:"stop_bits"`
	TransmissionMode string `toml:"transmission_mode"`
	PauseAfterConn   string `toml:"pause_after_connect"`
	PauseBetween     string `toml:"pause_between_requests"`
	CloseAfterGather bool   `toml:"close_connection_after_gather"`
	ConfigType       string `toml:"configuration_type"`

	Holding  []registerField `toml:"holding_registers"`
	Input    []registerField `toml:"input_registers"`
	Coils    []registerField `toml:"coils"`
	Discrete []registerField `toml:"discrete_inputs"`

	Requests    []request `toml:"request"`
	Workarounds struct {
		OnePerField bool   `toml:"one_request_per_field"`
		PauseAfter  string `toml:"pause_after_connect"`
		PauseBetw   string `toml:"pause_between_requests"`
		CloseAfter  bool   `toml:"close_connection_after_gather"`
	} `toml:"workarounds"`
}

type registerField struct {
	Name      string  `toml:"name"`
	ByteOrder string  `toml:"byte_order"`
	DataType  string  `toml:"data_type"`
	Scale     float64 `toml:"scale"`
	Address   []int   `toml:"address"`
}

type request struct {
	SlaveID     int            `toml:"slave_id"`
	ByteOrder   string         `toml:"byte_order"`
	Register    string         `toml:"register"`
	Measurement string         `toml:"measurement"`
	Fields      []requestField `toml:"fields"`
}

type requestField struct {
	Address     int     `toml:"address"`
	Name        string  `toml:"name"`
	Type        string  `toml:"type"`
	Scale       float64 `toml:"scale"`
	Omit        bool    `toml:"omit"`
	Measurement string  `toml:"measurement"`
}

type opcuaInput struct {
	Name           string      `toml:"name"`
	Endpoint       string      `toml:"endpoint"`
	ConnectTimeout string      `toml:"connect_timeout"`
	RequestTimeout string      `toml:"request_timeout"`
	Interval       string      `toml:"interval"`
	SecurityPolicy string      `toml:"security_policy"`
	SecurityMode   string      `toml:"security_mode"`
	Certificate    string      `toml:"certificate"`
	PrivateKey     string      `toml:"private_key"`
	AuthMethod     string      `toml:"auth_method"`
	Username       string      `toml:"username"`
	Password       string      `toml:"password"`
	Timestamp      string      `toml:"timestamp"`
	Nodes          []opcuaNode `toml:"nodes"`
	Groups         []struct {
		Name           string      `toml:"name"`
		Namespace      string      `toml:"namespace"`
		NamespaceURI   string      `toml:"namespace_uri"`
		IdentifierType string      `toml:"identifier_type"`
		Nodes          []opcuaNode `toml:"nodes"`
	} `toml:"group"`
}

type opcuaNode struct {
	Name           string `toml:"name"`
	Namespace      string `toml:"namespace"`
	NamespaceURI   string `toml:"namespace_uri"`
	IdentifierType string `toml:"identifier_type"`
	Identifier     string `toml:"identifier"`
}

// Result is a converted configuration and what could not be carried over.
type Result struct {
	Config edge.Config
	// Notes say, one per line, what was not mapped or was filled with a placeholder, so the
	// operator can finish the file.
	Notes []string
}

// Convert reads a telegraf.conf and converts its inputs.modbus and inputs.opcua sections.
func Convert(name string, data []byte) (*Result, error) {
	var f file
	md, err := toml.Decode(string(data), &f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	c := &converter{res: &Result{}}
	cfg := &c.res.Config
	cfg.Site = "site-1"
	c.note("site: set to the placeholder %q: put the site id of the platform here", cfg.Site)
	cfg.Edge = idOf(f.Agent.Hostname)
	if cfg.Edge == "" {
		cfg.Edge = "edge-1"
		c.note("edge: set to the placeholder %q: no [agent] hostname", cfg.Edge)
	}
	cfg.MQTT = publish.Broker{Servers: []string{"tcp://127.0.0.1:1883"}}
	if len(f.Outputs.MQTT) > 0 && len(f.Outputs.MQTT[0].Servers) > 0 {
		cfg.MQTT.Servers = nil
		for _, s := range f.Outputs.MQTT[0].Servers {
			if !strings.Contains(s, "://") {
				s = "tcp://" + s
			}
			cfg.MQTT.Servers = append(cfg.MQTT.Servers, s)
		}
		c.note("mqtt.servers: taken from [[outputs.mqtt]]; aqualoop publishes its own topics and payload, not Telegraf's")
	} else {
		c.note("mqtt.servers: set to the placeholder tcp://127.0.0.1:1883: no [[outputs.mqtt]]")
	}
	cfg.Spool = spool.Config{Dir: "/var/lib/aqualoop-edge/spool"}
	interval := c.duration("agent.interval", f.Agent.Interval)
	for i, in := range f.Inputs.Modbus {
		c.modbus(i, in, interval)
	}
	for i, in := range f.Inputs.OPCUA {
		c.opcua(i, in, interval)
	}
	if len(f.Inputs.Modbus)+len(f.Inputs.OPCUA) == 0 {
		return nil, fmt.Errorf("%s has no [[inputs.modbus]] or [[inputs.opcua]] section", name)
	}
	// Keys nobody read: anything of the two inputs is reported, the rest of Telegraf's file
	// (other plugins, outputs, processors) is none of our business.
	var unread []string
	for _, k := range md.Undecoded() {
		s := k.String()
		if strings.HasPrefix(s, "inputs.modbus") || strings.HasPrefix(s, "inputs.opcua") {
			unread = append(unread, s)
		}
	}
	sort.Strings(unread)
	for _, s := range slices.Compact(unread) {
		c.note("%s: not mapped, no aqualoop equivalent", s)
	}
	return c.res, nil
}

type converter struct {
	res *Result
}

func (c *converter) note(format string, args ...any) {
	c.res.Notes = append(c.res.Notes, fmt.Sprintf(format, args...))
}

func (c *converter) duration(key, s string) time.Duration {
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		c.note("%s: %q is not a duration, left to the default", key, s)
		return 0
	}
	return d
}

var notID = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// idOf turns a Telegraf name into an aqualoop id (letters, digits, '-', '_', '.').
func idOf(s string) string {
	return strings.Trim(notID.ReplaceAllString(strings.TrimSpace(s), "-"), "-")
}

// busName names a new Modbus bus or OPC UA server after its Telegraf input (or after fallback),
// unique among the buses and servers already converted.
func (c *converter) busName(input, fallback string) string {
	taken := map[string]bool{}
	for _, b := range c.res.Config.Modbus {
		taken[b.Name] = true
	}
	for _, s := range c.res.Config.OPCUA {
		taken[s.Name] = true
	}
	base := idOf(input)
	if base == "" {
		base = fallback
	}
	return uniqueName(base, taken)
}

// uniqueName returns base, or base-2, base-3 ... when taken.
func uniqueName(base string, taken map[string]bool) string {
	name := base
	for i := 2; taken[name]; i++ {
		name = fmt.Sprintf("%s-%d", base, i)
	}
	taken[name] = true
	return name
}
