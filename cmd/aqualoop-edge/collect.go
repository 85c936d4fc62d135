package main

import (
	"context"
	"flag"
	"log/slog"

	"github.com/aqualoop/aqualoop/collector/edge"
)

func cmdCollect(ctx context.Context, args []string, logger *slog.Logger) error {
	fs := flag.NewFlagSet("collect", flag.ContinueOnError)
	path := fs.String("config", "configs/demo/edge.yaml", "edge config file")
	if err := fs.Parse(args); err != nil {
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
