package telegraf

import (
	"bytes"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// YAML writes the configuration as edge.yaml: only the keys that differ from their zero value,
// durations as "10s", points as one flow-style line each, and the notes as a comment on top.
func (r *Result) YAML() ([]byte, error) {
	n := node(reflect.ValueOf(r.Config))
	var buf bytes.Buffer
	buf.WriteString("# edge.yaml converted from telegraf.conf by aqualoop-edge import-telegraf.\n")
	buf.WriteString("# Check it with: aqualoop-edge check edge.yaml   Reference: docs/edge.md\n")
	if len(r.Notes) > 0 {
		buf.WriteString("#\n# Not carried over or filled with a placeholder:\n")
		for _, s := range r.Notes {
			buf.WriteString("#   - " + s + "\n")
		}
	}
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, fmt.Errorf("encode edge.yaml: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode edge.yaml: %w", err)
	}
	return buf.Bytes(), nil
}

var durationType = reflect.TypeFor[time.Duration]()

// node turns a config value into YAML, leaving out zero values.
func node(v reflect.Value) *yaml.Node {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	if v.Type() == durationType {
		return scalar(time.Duration(v.Int()).String(), "!!str")
	}
	switch v.Kind() {
	case reflect.Struct:
		m := &yaml.Node{Kind: yaml.MappingNode}
		leaf := true
		for i := range v.NumField() {
			f := v.Type().Field(i)
			key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if key == "" || key == "-" || !f.IsExported() || v.Field(i).IsZero() {
				continue
			}
			c := node(v.Field(i))
			if c == nil {
				continue
			}
			if c.Kind != yaml.ScalarNode {
				leaf = false
			}
			m.Content = append(m.Content, scalar(key, "!!str"), c)
		}
		if leaf && len(m.Content) > 0 && len(m.Content) <= 16 {
			m.Style = yaml.FlowStyle // a point or a node: one line each
		}
		return m
	case reflect.Slice:
		s := &yaml.Node{Kind: yaml.SequenceNode}
		for i := range v.Len() {
			if c := node(v.Index(i)); c != nil {
				s.Content = append(s.Content, c)
			}
		}
		if v.Type().Elem().Kind() == reflect.String {
			s.Style = yaml.FlowStyle
		}
		return s
	case reflect.String:
		return scalar(v.String(), "!!str")
	case reflect.Bool:
		return scalar(strconv.FormatBool(v.Bool()), "!!bool")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return scalar(strconv.FormatInt(v.Int(), 10), "!!int")
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return scalar(strconv.FormatUint(v.Uint(), 10), "!!int")
	case reflect.Float32, reflect.Float64:
		return scalar(strconv.FormatFloat(v.Float(), 'g', -1, 64), "!!float")
	}
	return nil
}

func scalar(s, tag string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Value: s, Tag: tag}
}
