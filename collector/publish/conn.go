package publish

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// connReadBuffer is the read buffer of a broker connection: many small MQTT packets per read.
const connReadBuffer = 32 << 10

// openConn dials a broker for paho, for the schemes Validate allows, and hands paho a
// connection that reads through a buffer. paho reads each packet straight from the connection,
// its fixed header one byte at a time, so every message cost three or more read system calls:
// at ten thousand messages a second that was about a tenth of the platform's CPU
// (BenchmarkEndToEnd's profile, docs/performance.md). Writes are unbuffered, as paho expects.
func openConn(uri *url.URL, o mqtt.ClientOptions) (net.Conn, error) {
	d := o.Dialer
	if d == nil {
		d = &net.Dialer{Timeout: o.ConnectTimeout}
	}
	var c net.Conn
	var err error
	switch uri.Scheme {
	case "tcp", "mqtt":
		c, err = d.Dial("tcp", uri.Host)
	case "ssl", "tls", "mqtts":
		c, err = tls.DialWithDialer(d, "tcp", uri.Host, o.TLSConfig)
	case "ws", "wss":
		u := *uri
		u.User = nil // the websocket dialer refuses credentials in the URL; MQTT carries them
		var tc *tls.Config
		if uri.Scheme == "wss" {
			tc = o.TLSConfig
		}
		c, err = mqtt.NewWebsocket(u.String(), tc, o.ConnectTimeout, o.HTTPHeaders, o.WebsocketOptions)
	default:
		return nil, fmt.Errorf("broker URL %s: scheme %q is not one of tcp, ssl, ws, wss", uri.Redacted(), uri.Scheme)
	}
	if err != nil {
		return nil, err
	}
	return &bufferedConn{Conn: c, r: bufio.NewReaderSize(c, connReadBuffer)}, nil
}

// bufferedConn is a connection whose reads go through a buffer.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
