package main

import (
	"context"
	"io"
	"time"

	"github.com/aqualoop/aqualoop/collector/opcua"
)

func cmdBrowse(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("browse", "--endpoint opc.tcp://host:port [flags]", stderr)
	var c opcua.BrowseConfig
	fs.StringVar(&c.Server.Endpoint, "endpoint", "", "the server, opc.tcp://host:port[/path]")
	fs.StringVar(&c.Server.SecurityPolicy, "security-policy", opcua.PolicyNone, "None, Basic256Sha256, Basic256, Aes128_Sha256_RsaOaep or Aes256_Sha256_RsaPss")
	fs.StringVar(&c.Server.SecurityMode, "security-mode", "", "None, Sign or SignAndEncrypt (default: None with policy None, else SignAndEncrypt)")
	fs.StringVar(&c.Server.Auth, "auth-method", opcua.AuthAnonymous, "Anonymous, UserName or Certificate")
	fs.StringVar(&c.Server.Username, "username", "", "with auth-method UserName; the password comes from --password-file or "+opcua.PasswordEnv)
	fs.StringVar(&c.Server.PasswordFile, "password-file", "", "file holding the password")
	fs.StringVar(&c.Server.CertDir, "cert-dir", "", "where the client certificate is kept (generated on first use), as cert_dir in edge.yaml")
	fs.StringVar(&c.Server.Certificate, "certificate", "", "client certificate file (PEM or DER)")
	fs.StringVar(&c.Server.PrivateKey, "private-key", "", "client private key file")
	fs.StringVar(&c.Root, "root", "", `node to list below, e.g. "ns=2;s=Plant" (default: the Objects folder and each namespace's own)`)
	fs.IntVar(&c.Depth, "depth", 3, "levels below the root")
	fs.DurationVar(&c.Server.Timeout, "timeout", 10*time.Second, "per request")
	if err := parse(fs, args, stdout); err != nil {
		return err
	}
	return opcua.Browse(ctx, c, stdout)
}
