package ingest

import (
	"strings"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/aqualoop/aqualoop/collector/wire"
)

// subscribeStatus subscribes to the edges' retained status topics of the ingested sites, when
// someone listens (Options.OnStatus). The subscription is plain, never shared: a broker does not
// hand retained messages to shared subscriptions, and every instance should know every edge of
// its sites.
func (in *Ingester) subscribeStatus(c mqtt.Client) {
	if in.opts.OnStatus == nil {
		return
	}
	filters := map[string]byte{}
	for _, s := range in.cfg.Sites {
		filters[wire.StatusTopic(s, "+")] = 1
	}
	t := c.SubscribeMultiple(filters, func(_ mqtt.Client, m mqtt.Message) {
		in.HandleStatus(m.Topic(), m.Payload())
		m.Ack()
	})
	if t.WaitTimeout(in.cfg.MQTT.Timeout) && t.Error() != nil {
		in.opts.Logger.Error("subscribe to edge status failed", "err", t.Error())
	}
}

// HandleStatus passes one status message to OnStatus, stamped with the platform clock; a topic
// or payload it cannot read is counted as a rejected message.
func (in *Ingester) HandleStatus(topic string, payload []byte) {
	if len(payload) == 0 {
		return // a retained status being cleared
	}
	rest, ok := strings.CutPrefix(topic, wire.Root+"/")
	parts := strings.Split(rest, "/")
	p := string(payload)
	if !ok || len(parts) != 4 || parts[1] != "edges" || parts[3] != "status" || !wire.ValidID(parts[0]) || !wire.ValidID(parts[2]) ||
		p != wire.StatusOnline && p != wire.StatusOffline {
		in.opts.Metrics.rejected.WithLabelValues(KindTopic).Inc()
		return
	}
	if in.opts.OnStatus != nil {
		in.opts.OnStatus(parts[0], parts[2], p == wire.StatusOnline, in.opts.Now())
	}
}
