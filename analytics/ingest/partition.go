package ingest

import (
	"fmt"
	"hash/fnv"
	"os"
	"strconv"
	"strings"

	"github.com/aqualoop/aqualoop/collector/config"
	"github.com/aqualoop/aqualoop/collector/wire"
)

// Partition is this instance's share of the sites when several platform instances run side by
// side (docs/scale.md). Instance Index of Count owns the sites whose 32-bit FNV-1a hash of the
// site id, modulo Count, equals Index: a rule any instance, any language and any operator can
// recompute, stable across restarts and releases. Each instance subscribes only to its sites'
// topics with a persistent session, so while it is down its readings wait in the broker.
//
// Count 0 or 1 means a single instance owns every site (the default).
type Partition struct {
	Index int `yaml:"index"`
	Count int `yaml:"count"`
	// IndexEnv names an environment variable holding the index, or a name ending in "-<index>":
	// in a Kubernetes StatefulSet, POD_NAME set from metadata.name ("aqualoop-2" → 2). It
	// overrides Index.
	IndexEnv string `yaml:"index_env"`

	envErr string
}

// Default resolves IndexEnv.
func (p *Partition) Default() { p.resolve(os.Getenv) }

func (p *Partition) resolve(getenv func(string) string) {
	if p.IndexEnv == "" {
		return
	}
	v := getenv(p.IndexEnv)
	if v == "" {
		p.envErr = fmt.Sprintf("environment variable %s is not set", p.IndexEnv)
		return
	}
	digits := v[strings.LastIndexByte(v, '-')+1:]
	n, err := strconv.Atoi(digits)
	if err != nil || n < 0 {
		p.envErr = fmt.Sprintf("%s=%q holds no index (a number, or a name ending in -<number>)", p.IndexEnv, v)
		return
	}
	p.Index = n
}

// Validate reports every problem under path.
func (p *Partition) Validate(pr *config.Problems, path string) {
	if p.envErr != "" {
		pr.Addf(path+".index_env", "%s", p.envErr)
	}
	if p.Count < 0 {
		pr.Addf(path+".count", "%d is negative (0 or 1: one instance owns every site)", p.Count)
	}
	if p.Count > 1 && (p.Index < 0 || p.Index >= p.Count) {
		pr.Addf(path+".index", "%d is outside 0..%d (count %d)", p.Index, p.Count-1, p.Count)
	}
}

// Partitioned reports whether the sites are split between instances.
func (p Partition) Partitioned() bool { return p.Count > 1 }

// Owns reports whether this instance owns site.
func (p Partition) Owns(site string) bool {
	if p.Count <= 1 {
		return true
	}
	return SiteShard(site, p.Count) == p.Index
}

// SiteShard is the index of the instance, of count, that owns site: FNV-1a (32 bit) of the
// site id modulo count.
func SiteShard(site string, count int) int {
	h := fnv.New32a()
	h.Write([]byte(site))
	return int(h.Sum32() % uint32(count))
}

// filters returns the subscriptions of this instance and, with a partition, the ones it must
// not hold (other instances' sites, the all-sites and shared filters of an unpartitioned
// setup), which a persistent session may still carry.
func (in *Ingester) filters() (subscribe map[string]byte, drop []string) {
	subscribe = map[string]byte{}
	p := in.cfg.Partition
	if !p.Partitioned() {
		for _, s := range in.cfg.Sites {
			subscribe[wire.ReadingFilter(in.cfg.Group, s)] = 1
		}
		return subscribe, nil
	}
	for _, s := range in.opts.Sites {
		if p.Owns(s) {
			subscribe[wire.ReadingFilter("", s)] = 1
		} else {
			drop = append(drop, wire.ReadingFilter("", s))
		}
	}
	// The unpartitioned filters, including the shared group "aqualoop" that earlier releases
	// subscribed by default.
	drop = append(drop, wire.ReadingFilter("", "+"), wire.ReadingFilter("aqualoop", "+"))
	if g := in.cfg.Group; g != "" && g != "aqualoop" {
		drop = append(drop, wire.ReadingFilter(g, "+"))
	}
	return subscribe, drop
}

// owns reports whether a message's site belongs to this instance (always, unpartitioned).
func (in *Ingester) owns(topic string) bool {
	if !in.cfg.Partition.Partitioned() {
		return true
	}
	site, _, err := wire.ParseReadingTopic(topic)
	return err != nil || in.cfg.Partition.Owns(site)
}
