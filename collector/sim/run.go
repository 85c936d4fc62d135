package sim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// Run starts the Modbus gateway and the OPC UA server, pushes new OPC UA values every
// update_interval, and serves until ctx ends; then it closes both servers and returns nil.
// A Plant runs once.
func (p *Plant) Run(ctx context.Context) error {
	if !p.running.CompareAndSwap(false, true) {
		return errors.New("run plant: a plant runs only once")
	}
	mb, mbAddr, err := retryFreePort(p.cfg.Modbus.Listen, p.startModbus)
	if err != nil {
		return err
	}
	defer func() {
		if err := mb.Stop(); err != nil {
			p.log.Warn("stop modbus server; sockets left to the process exit", "err", err)
		}
	}()

	uaCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	ua, uaURL, err := retryFreePort(p.cfg.OPCUA.Listen, func() (*uaServer, string, error) { return p.startOPCUA(uaCtx) })
	if err != nil {
		return err
	}
	defer func() {
		if err := ua.srv.Close(); err != nil {
			p.log.Warn("close opcua server; sockets left to the process exit", "err", err)
		}
	}()

	p.addrMu.Lock()
	p.mbAddr, p.uaURL = mbAddr, uaURL
	p.addrMu.Unlock()
	close(p.ready)
	p.log.Info("plant simulator listening", "site", p.cfg.Site, "modbus", mbAddr, "opcua", uaURL,
		"namespace", p.NamespaceURI(), "start", p.start.Format(time.RFC3339), "time_scale", p.scale)

	tick := time.NewTicker(p.cfg.UpdateInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			p.log.Info("plant simulator stopping", "site", p.cfg.Site)
			return nil
		case <-tick.C:
			p.publish(ua)
		}
	}
}

// retryFreePort calls start again when listen asks for a free port and another process took the
// one freeAddr found before the server bound it.
func retryFreePort[S any](listen string, start func() (S, string, error)) (S, string, error) {
	s, addr, err := start()
	for attempt := 1; err != nil && attempt < 3 && strings.HasSuffix(listen, ":0"); attempt++ {
		s, addr, err = start()
	}
	return s, addr, err
}

// freeAddr returns listen with a free port in place of port 0. Neither server library exposes
// the address it bound, so the port is found first; another process could take it in between,
// and then the server's start fails with a clear error.
func freeAddr(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", err
	}
	if port != "0" {
		return listen, nil
	}
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return "", err
	}
	defer l.Close()
	_, port, err = net.SplitHostPort(l.Addr().String())
	if err != nil {
		return "", fmt.Errorf("read bound address: %w", err)
	}
	return net.JoinHostPort(host, port), nil
}
