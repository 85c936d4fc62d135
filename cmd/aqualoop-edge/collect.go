package main

import (
	"context"
	"io"
	"log/slog"

	"github.com/aqualoop/aqualoop/collector/edge"
)

func cmdCollect(ctx context.Context, args []string, stdout, stderr io.Writer, logger *slog.Logger) error {
	fs := newFlags("collect", "--config FILE", stderr)
	path := fs.String("config", "configs/demo/edge.yaml", "edge config file (reference: docs/edge.md)")
	if err := parse(fs, args, stdout); err != nil {
		return err
	}
	cfg, err := edge.LoadConfig(*path)
	if err != nil {
		return err
	}
	e, err := edge.New(*cfg, edge.Options{Logger: logger, Ready: func(addr string) {
		if addr != "" {
			logger.Info("edge listening", "url", "http://"+addr+"/healthz")
		}
	}})
	if err != nil {
		return err
	}
	return e.Run(ctx)
}
