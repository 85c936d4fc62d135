package opcua

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
)

// BrowseConfig says what to list of a server: its namespaces and the nodes below Root.
type BrowseConfig struct {
	// Server holds the endpoint, security and login, as an opcua entry of edge.yaml; its meters
	// are ignored.
	Server Config
	Root   string // node id to start from; default i=85, the Objects folder
	Depth  int    // levels below Root; default 3
}

// Browse connects as the edge would and writes the server's namespace array and, below Root,
// every node with its node id (in the nsu= form, which survives renumbered namespaces), node
// class, browse name and, for variables, data type: what an integrator needs to fill in node_id
// without another tool.
func Browse(ctx context.Context, cfg BrowseConfig, w io.Writer) error {
	roots := []string{cfg.Root}
	if cfg.Root == "" {
		cfg.Root = "i=85"
		roots = nil
	}
	if cfg.Depth <= 0 {
		cfg.Depth = 3
	}
	sc := cfg.Server
	if sc.Name == "" {
		sc.Name = "browse"
	}
	// New wants a meter to read; the server's current time stands in for one.
	sc.Meters = []Meter{{Meter: "browse", Nodes: []Node{{Name: "time", NodeID: "i=2258"}}}}
	s, err := New(sc, "browse", Options{})
	if err != nil {
		return err
	}
	cn, err := s.connect(ctx)
	if err != nil {
		return err
	}
	defer cn.close(s.cfg.Timeout)
	fmt.Fprintf(w, "%s (%s/%s)\n\nnamespaces:\n", s.cfg.Endpoint, cn.policy, cn.mode)
	for i, ns := range cn.namespaces {
		fmt.Fprintf(w, "  ns=%d  %s\n", i, ns)
	}
	if roots == nil {
		// Some servers (gopcua's among them) hang each namespace's nodes below an Objects
		// folder of that namespace, not below the standard one: list those too.
		roots = []string{"i=85"}
		for _, ns := range cn.namespaces[min(1, len(cn.namespaces)):] {
			roots = append(roots, "nsu="+ns+";i=85")
		}
	}
	b := browser{ctx: ctx, s: s, cn: cn, seen: map[string]bool{}, listed: map[string]bool{}}
	for i, r := range roots {
		n, err := parseNodeID(r)
		if err != nil {
			return fmt.Errorf("root %w", err)
		}
		start, err := n.resolve(cn.namespaces)
		if err != nil {
			return err
		}
		if b.seen[start.String()] {
			continue // already listed below an earlier root
		}
		refs, err := b.children(start)
		if err != nil {
			if i > 0 && cfg.Root == "i=85" {
				continue // that namespace has no Objects folder of its own
			}
			return err
		}
		if len(refs) == 0 && i > 0 {
			continue
		}
		fmt.Fprintf(w, "\nbelow %s:\n", r)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  node_id\tclass\tbrowse name\tdata type")
		b.tw = tw
		if err := b.walk(start, 0, cfg.Depth); err != nil {
			return err
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

type browser struct {
	ctx    context.Context
	s      *Source
	cn     *conn
	tw     io.Writer
	seen   map[string]bool // nodes whose children were listed
	listed map[string]bool // nodes printed: each once, and never a way back up the tree
}

func (b *browser) walk(n *ua.NodeID, depth, limit int) error {
	if depth >= limit || b.seen[n.String()] {
		return nil
	}
	b.seen[n.String()] = true
	b.listed[n.String()] = true
	refs, err := b.children(n)
	if err != nil {
		return err
	}
	types := b.dataTypes(refs)
	for i, r := range refs {
		child := r.NodeID.NodeID
		if b.listed[child.String()] {
			continue
		}
		b.listed[child.String()] = true
		fmt.Fprintf(b.tw, "  %s%s\t%s\t%s\t%s\n", strings.Repeat("  ", depth), b.stable(child),
			strings.TrimPrefix(r.NodeClass.String(), "NodeClass"), r.BrowseName.Name, types[i])
		if r.NodeClass == ua.NodeClassObject || r.NodeClass == ua.NodeClassVariable {
			if err := b.walk(child, depth+1, limit); err != nil {
				return err
			}
		}
	}
	return nil
}

// children lists the hierarchical references of n, following continuation points.
func (b *browser) children(n *ua.NodeID) ([]*ua.ReferenceDescription, error) {
	ctx, cancel := context.WithTimeout(b.ctx, b.s.cfg.Timeout)
	defer cancel()
	res, err := b.cn.c.Browse(ctx, &ua.BrowseRequest{
		View: &ua.ViewDescription{ViewID: ua.NewTwoByteNodeID(0)},
		NodesToBrowse: []*ua.BrowseDescription{{
			NodeID: n, BrowseDirection: ua.BrowseDirectionForward,
			ReferenceTypeID: ua.NewNumericNodeID(0, id.HierarchicalReferences), IncludeSubtypes: true,
			NodeClassMask: uint32(ua.NodeClassObject | ua.NodeClassVariable), ResultMask: uint32(ua.BrowseResultMaskAll),
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("browse %s: %w", n, err)
	}
	if len(res.Results) != 1 {
		return nil, fmt.Errorf("browse %s: %d results", n, len(res.Results))
	}
	r := res.Results[0]
	if r.StatusCode != ua.StatusOK {
		return nil, fmt.Errorf("browse %s: %s", n, statusName(r.StatusCode))
	}
	refs := r.References
	for cp := r.ContinuationPoint; len(cp) > 0; {
		next, err := b.cn.c.BrowseNext(ctx, &ua.BrowseNextRequest{ContinuationPoints: [][]byte{cp}})
		if err != nil || len(next.Results) != 1 {
			break
		}
		refs = append(refs, next.Results[0].References...)
		cp = next.Results[0].ContinuationPoint
	}
	// A node reached by two references (a component that is also organized) is listed once.
	seen := map[string]bool{}
	out := refs[:0]
	for _, ref := range refs {
		if ref == nil || ref.NodeID == nil || seen[ref.NodeID.NodeID.String()] {
			continue
		}
		seen[ref.NodeID.NodeID.String()] = true
		out = append(out, ref)
	}
	return out, nil
}

// dataTypes reads the DataType attribute of the variables among refs.
func (b *browser) dataTypes(refs []*ua.ReferenceDescription) []string {
	out := make([]string, len(refs))
	var req ua.ReadRequest
	var idx []int
	for i, r := range refs {
		if r.NodeClass == ua.NodeClassVariable {
			req.NodesToRead = append(req.NodesToRead, &ua.ReadValueID{NodeID: r.NodeID.NodeID, AttributeID: ua.AttributeIDDataType})
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return out
	}
	ctx, cancel := context.WithTimeout(b.ctx, b.s.cfg.Timeout)
	defer cancel()
	res, err := b.cn.c.Read(ctx, &req)
	if err != nil || len(res.Results) != len(idx) {
		return out
	}
	for k, dv := range res.Results {
		if dv == nil || dv.Value == nil {
			continue
		}
		switch v := dv.Value.Value().(type) {
		case *ua.NodeID:
			out[idx[k]] = typeName(v)
		case *ua.ExpandedNodeID:
			out[idx[k]] = typeName(v.NodeID)
		}
	}
	return out
}

func typeName(n *ua.NodeID) string {
	if n.Namespace() == 0 && n.Type() <= ua.NodeIDTypeNumeric {
		if name := id.Name(n.IntID()); name != "" {
			return name
		}
	}
	return n.String()
}

// stable writes n with its namespace URI instead of its index, as node_id accepts it.
func (b *browser) stable(n *ua.NodeID) string {
	s := n.String()
	if ns := int(n.Namespace()); ns > 0 && ns < len(b.cn.namespaces) {
		if _, ident, ok := strings.Cut(s, ";"); ok {
			return "nsu=" + b.cn.namespaces[ns] + ";" + ident
		}
	}
	return s
}
