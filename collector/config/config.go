// Package config loads aqualoop's YAML files the same way everywhere: unknown keys are errors,
// defaults are applied before validation, and every problem is reported at once with its file,
// line and key path, so an operator fixes a file in one pass instead of one error per restart.
package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Defaulter is implemented by configs that fill in defaults. Parse calls Default after decoding
// and before validation, so Default fills only the fields the file left at their zero value; a
// parent's Default calls its children's.
type Defaulter interface{ Default() }

// Validator is implemented by configs that check themselves. Validate adds every problem it finds.
type Validator interface{ Validate(p *Problems) }

// Problem is one thing wrong with a config, at a key path such as "meters[3].registers[1].type".
type Problem struct {
	Line int // 0 when the path does not appear in the file (a missing key)
	Path string
	Msg  string
}

// Problems collects validation problems.
type Problems struct {
	list []Problem
}

// Addf records a problem at path.
func (p *Problems) Addf(path, format string, args ...any) {
	p.list = append(p.list, Problem{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// Len is the number of problems recorded.
func (p *Problems) Len() int { return len(p.list) }

// Error is every problem of one file.
type Error struct {
	File     string
	Problems []Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.File)
		if p.Line > 0 {
			b.WriteString(":" + strconv.Itoa(p.Line))
		}
		b.WriteString(": ")
		if p.Path != "" {
			b.WriteString(p.Path + ": ")
		}
		b.WriteString(p.Msg)
	}
	return b.String()
}

// Load reads the YAML file at path into v, a pointer to a config struct.
func Load(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data, v)
}

// Parse is Load for data already in memory; name is used in messages. Every problem of the file
// is reported in one error: unknown keys (with the nearest valid key), values of the wrong type,
// and what Validate finds in the rest, each with its line and full key path.
func Parse(name string, data []byte, v any) error {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return &Error{File: name, Problems: []Problem{syntaxProblem(err)}}
	}
	// Keep the original for lineOf: the walker prunes what it reports from root.
	var orig yaml.Node
	_ = yaml.Unmarshal(data, &orig)
	w := walker{bad: map[string]bool{}}
	if root.Kind != 0 {
		w.check(&root, reflect.TypeOf(v), "", 0)
		if err := root.Decode(v); err != nil {
			// The walker let through something the decoder refuses: report the decoder's own
			// words rather than nothing.
			var te *yaml.TypeError
			if !errors.As(err, &te) {
				return &Error{File: name, Problems: append(w.problems, syntaxProblem(err))}
			}
			for _, m := range te.Errors {
				w.problems = append(w.problems, lineProblem(m))
			}
		}
	}
	if d, ok := v.(Defaulter); ok {
		d.Default()
	}
	ps := w.problems
	if val, ok := v.(Validator); ok {
		var vp Problems
		val.Validate(&vp)
		for _, p := range vp.list {
			if w.bad[p.Path] {
				continue // the value was refused while decoding; its zero value proves nothing
			}
			p.Line = lineOf(&orig, p.Path)
			ps = append(ps, p)
		}
	}
	if len(ps) == 0 {
		return nil
	}
	return &Error{File: name, Problems: ps}
}

// lineProblem turns yaml's "line 5: field foo not found in type x.T" into a Problem.
func lineProblem(msg string) Problem {
	rest, ok := strings.CutPrefix(msg, "line ")
	if ok {
		num, tail, ok := strings.Cut(rest, ": ")
		if n, err := strconv.Atoi(num); ok && err == nil {
			if f, ok := strings.CutPrefix(tail, "field "); ok {
				if key, _, ok := strings.Cut(f, " not found in type"); ok {
					return Problem{Line: n, Path: key, Msg: "unknown key"}
				}
			}
			return Problem{Line: n, Msg: tail}
		}
	}
	return Problem{Msg: msg}
}

func syntaxProblem(err error) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	return lineProblem(msg)
}

// lineOf finds the line of a key path ("a.b[2].c") in a decoded document. When the full path is
// missing it returns the line of its longest existing prefix, which is where the key belongs.
func lineOf(root *yaml.Node, path string) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, step := range splitPath(path) {
		next := child(n, step)
		if next == nil {
			return line
		}
		n = next
		line = n.Line
	}
	return line
}

type pathStep struct {
	key   string
	index int // -1 for a key step
}

func splitPath(path string) []pathStep {
	var steps []pathStep
	for _, part := range strings.Split(path, ".") {
		key, rest, _ := strings.Cut(part, "[")
		if key != "" {
			steps = append(steps, pathStep{key: key, index: -1})
		}
		for rest != "" {
			num, after, _ := strings.Cut(rest, "]")
			i, err := strconv.Atoi(num)
			if err != nil {
				break
			}
			steps = append(steps, pathStep{index: i})
			rest = strings.TrimPrefix(after, "[")
		}
	}
	return steps
}

// child returns the value node for a key step, or the key node's line carrier for a mapping.
func child(n *yaml.Node, s pathStep) *yaml.Node {
	switch {
	case s.index >= 0 && n.Kind == yaml.SequenceNode:
		if s.index < len(n.Content) {
			return n.Content[s.index]
		}
	case s.index < 0 && n.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == s.key {
				v := n.Content[i+1]
				if v.Kind == yaml.ScalarNode {
					// Report scalars at their key's line, which is where the reader looks.
					return &yaml.Node{Kind: v.Kind, Line: n.Content[i].Line}
				}
				return v
			}
		}
	}
	return nil
}
