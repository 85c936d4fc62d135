package config

import (
	"encoding"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// walker checks a YAML document against the Go type it decodes into, before decoding, so that
// every unknown key and every value of the wrong type is reported with its full key path and
// line in one run. It prunes what it reported from the document, so the rest still decodes,
// defaults and validates, and those problems join the same report.
type walker struct {
	problems []Problem
	bad      map[string]bool // paths reported here; validation problems at them are repeats
}

var (
	durationType    = reflect.TypeFor[time.Duration]()
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	textType        = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func (w *walker) add(line int, path, format string, args ...any) {
	w.problems = append(w.problems, Problem{Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
	w.bad[path] = true
}

// check reports whether n can decode into a value of type t, recording every problem found in
// it and removing the offending keys of mappings below it. A false result asks the caller to
// drop n itself.
func (w *walker) check(n *yaml.Node, t reflect.Type, path string, keyLine int) bool {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return true
		}
		return w.check(n.Content[0], t, path, keyLine)
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return true // null decodes into anything as its zero value
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	// A type with a decoder of its own decides for itself; decoding will report it.
	if reflect.PointerTo(t).Implements(unmarshalerType) || t.Kind() == reflect.Interface {
		return true
	}
	line := keyLine
	if line == 0 {
		line = n.Line
	}
	switch {
	case t.Kind() == reflect.Struct && !reflect.PointerTo(t).Implements(textType) && t != reflect.TypeFor[time.Time]():
		if n.Kind != yaml.MappingNode {
			w.add(line, path, "is %s, want a mapping of keys", describe(n))
			return false
		}
		fields := structKeys(t)
		_, anyKey := fields[inlineMap]
		kept := n.Content[:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Tag == "!!merge" {
				// "<<: *defaults" merges another mapping's keys: check them at this level.
				w.checkMerge(v, t, path)
				kept = append(kept, k, v)
				continue
			}
			f, ok := fields[k.Value]
			kp := join(path, k.Value)
			if !ok && anyKey {
				kept = append(kept, k, v)
				continue
			}
			if !ok {
				w.add(k.Line, kp, "unknown key%s", suggest(k.Value, sortedKeys(fields)))
				continue
			}
			if !w.check(v, f, kp, k.Line) {
				continue
			}
			kept = append(kept, k, v)
		}
		clear(n.Content[len(kept):])
		n.Content = kept
		return true
	case t.Kind() == reflect.Slice && t.Elem().Kind() != reflect.Uint8, t.Kind() == reflect.Array:
		if n.Kind != yaml.SequenceNode {
			w.add(line, path, "is %s, want a list", describe(n))
			return false
		}
		for i, item := range n.Content {
			if !w.check(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i), 0) {
				// Keep the list's indexes: the bad item decodes as its zero value.
				n.Content[i] = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null", Line: item.Line}
			}
		}
		return true
	case t.Kind() == reflect.Map:
		if n.Kind != yaml.MappingNode {
			w.add(line, path, "is %s, want a mapping", describe(n))
			return false
		}
		kept := n.Content[:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			kp := join(path, k.Value)
			if !w.check(k, t.Key(), kp, k.Line) || !w.check(v, t.Elem(), kp, k.Line) {
				continue
			}
			kept = append(kept, k, v)
		}
		clear(n.Content[len(kept):])
		n.Content = kept
		return true
	}
	// A scalar: let yaml itself try it, so the rules are exactly those of the decoder.
	if n.Kind != yaml.ScalarNode {
		w.add(line, path, "is %s, want %s", describe(n), typeName(t))
		return false
	}
	if err := n.Decode(reflect.New(t).Interface()); err != nil {
		w.add(line, path, "%s is not %s", quoteScalar(n), typeName(t))
		return false
	}
	return true
}

// checkMerge checks the mapping (or list of mappings) of a merge key against the struct type t.
func (w *walker) checkMerge(v *yaml.Node, t reflect.Type, path string) {
	for v.Kind == yaml.AliasNode && v.Alias != nil {
		v = v.Alias
	}
	if v.Kind == yaml.SequenceNode {
		for _, item := range v.Content {
			w.checkMerge(item, t, path)
		}
		return
	}
	w.check(v, t, path, 0)
}

// structKeys maps the YAML keys of struct type t, inlined structs included, to their types.
func structKeys(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		if strings.Contains(","+opts+",", ",inline,") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range structKeys(ft) {
					out[k] = v
				}
			} else {
				out[inlineMap] = ft // any key goes
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name) // yaml.v3's default key
		}
		out[name] = f.Type
	}
	return out
}

// inlineMap marks a struct with an inlined map, which takes any key.
const inlineMap = "\x00inline-map"

func sortedKeys(m map[string]reflect.Type) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		if k != inlineMap {
			keys = append(keys, k)
		}
	}
	return keys
}

// describe names the kind of node an operator wrote.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return quoteScalar(n)
}

func quoteScalar(n *yaml.Node) string {
	if n.Tag == "!!str" || n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
		return strconv.Quote(n.Value)
	}
	return n.Value
}

// typeName says in an operator's words what a Go type accepts.
func typeName(t reflect.Type) string {
	if t == durationType {
		return "a duration such as 15s, 2m or 1h30m"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		lo := -(int64(1) << (t.Bits() - 1))
		return fmt.Sprintf("a whole number from %d to %d", lo, -lo-1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if t.Bits() == 64 {
			return "a whole number from 0"
		}
		return fmt.Sprintf("a whole number from 0 to %d", uint64(1)<<t.Bits()-1)
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "text"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	}
	return "a " + t.String()
}

// suggest returns ` (did you mean "x"?)` for the valid key nearest to key, or "" when none is
// near enough to be a likely typo or a name from another tool (Telegraf's data_type for type).
func suggest(key string, valid []string) string {
	best, bestD := "", 1<<30
	for _, v := range valid {
		d := levenshtein(key, v)
		if d < bestD || d == bestD && v < best {
			best, bestD = v, d
		}
	}
	if best == "" {
		return ""
	}
	near := bestD <= max(2, len(key)/3)
	// A key that differs by a word: data_type and type, slave and slave_id.
	for _, v := range valid {
		if sharesWord(key, v) && (!near || levenshtein(key, v) < bestD) {
			best, near = v, true
			bestD = levenshtein(key, v)
		}
	}
	if !near {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// sharesWord reports whether one key is the other with whole "_"-separated words added.
func sharesWord(a, b string) bool {
	if len(a) < len(b) {
		a, b = b, a
	}
	return len(b) >= 3 && (strings.HasSuffix(a, "_"+b) || strings.HasPrefix(a, b+"_"))
}

// levenshtein is the edit distance between a and b (insertions, deletions, substitutions).
func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Keys lists every key path a YAML file decoding into a value of type t can hold, lists marked
// "[]" and maps "*": "modbus[].meters[].points[].byte_order". A documentation test compares it
// with the reference, so no key goes undocumented.
func Keys(t reflect.Type) []string {
	var out []string
	var walk func(t reflect.Type, path string, seen map[reflect.Type]bool)
	walk = func(t reflect.Type, path string, seen map[reflect.Type]bool) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch {
		case t.Kind() == reflect.Struct && t != reflect.TypeFor[time.Time]() && !seen[t]:
			seen[t] = true
			defer delete(seen, t)
			fields := structKeys(t)
			for _, k := range sortedKeys(fields) {
				kp := join(path, k)
				out = append(out, kp)
				walk(fields[k], kp, seen)
			}
		case t.Kind() == reflect.Slice && t.Elem().Kind() != reflect.Uint8:
			walk(t.Elem(), path+"[]", seen)
		case t.Kind() == reflect.Map:
			walk(t.Elem(), path+".*", seen)
		}
	}
	walk(t, "", map[reflect.Type]bool{})
	sort.Strings(out)
	return out
}
