package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/analytics/api/auth"
)

const tokenUsage = `usage:
  aqualoop token create [--config FILE] [--data-dir DIR] --name NAME --role viewer|auditor|editor|admin [--sites a,b | --park P] [--expires 90d]
  aqualoop token list   [--config FILE] [--data-dir DIR]
  aqualoop token revoke [--config FILE] [--data-dir DIR] ID
The token is printed once; only its SHA-256 is kept, in state.db in the platform's data folder.`

// cmdToken manages API tokens in the state database of the platform config.
func cmdToken(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New(tokenUsage)
	}
	fs := flag.NewFlagSet("token "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() { fmt.Fprintln(stdout, tokenUsage) }
	path := fs.String("config", "configs/demo/aqualoop.yaml", "platform config file (its data_dir locates state.db)")
	dataDir := fs.String("data-dir", "", "the platform's data folder, as given to serve --data-dir")
	name := fs.String("name", "", "who or what the token is for")
	role := fs.String("role", "", "viewer, auditor, editor or admin")
	sitesFlag := fs.String("sites", "", "comma-separated sites the token is scoped to")
	park := fs.String("park", "", "park the token is scoped to")
	expires := fs.String("expires", "", "lifetime, e.g. 90d or 720h (default: never)")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%v\n%s", err, tokenUsage)
	}
	cfg, err := loadPlatform(*path)
	if err == nil {
		err = cfg.prepareDataDir(*dataDir)
	}
	if err != nil {
		return err
	}
	db, err := openState(cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	store, err := auth.Open(ctx, db, nil)
	if err != nil {
		return err
	}
	switch args[0] {
	case "create":
		nt := auth.NewToken{Name: *name, Role: *role, Park: *park}
		for _, s := range strings.Split(*sitesFlag, ",") {
			if s = strings.TrimSpace(s); s != "" {
				nt.Sites = append(nt.Sites, s)
			}
		}
		if *expires != "" {
			d, err := auth.ParseExpiry(*expires)
			if err != nil {
				return fmt.Errorf("--expires: %w", err)
			}
			nt.Expires = time.Now().Add(d)
		}
		if err := checkScope(cfg, nt); err != nil {
			return err
		}
		tok, secret, err := store.Create(ctx, nt)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "token %s (%s, %s%s) created; it is shown only now:\n\n  %s\n\n", tok.ID, tok.Name, tok.Role, scopeText(tok), secret)
		fmt.Fprintf(stdout, "Use it as  Authorization: Bearer %s...  or log in a browser at  /login#token=<token>\n", secret[:8])
		return nil
	case "list":
		ts, err := store.List(ctx)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tNAME\tROLE\tSCOPE\tCREATED\tEXPIRES\tLAST USED\tSTATE")
		for _, t := range ts {
			st := "active"
			switch {
			case t.Revoked != nil:
				st = "revoked " + t.Revoked.Format(time.DateOnly)
			case t.Expires != nil && t.Expires.Before(time.Now()):
				st = "expired"
			}
			scope := strings.TrimPrefix(scopeText(t), ", ")
			if scope == "" {
				scope = "all sites"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Role, scope, t.Created.Format(time.DateOnly), dateOr(t.Expires, "never"), dateOr(t.LastUsed, "-"), st)
		}
		return w.Flush()
	case "revoke":
		if fs.NArg() != 1 {
			return errors.New("token revoke takes one token id (see aqualoop token list)")
		}
		if err := store.Revoke(ctx, fs.Arg(0)); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "token %s revoked; its sessions are ended\n", fs.Arg(0))
		return nil
	}
	return fmt.Errorf("unknown token command %q\n%s", args[0], tokenUsage)
}

// checkScope refuses sites and parks the platform does not model: a typo would otherwise make a
// token that sees nothing.
func checkScope(cfg *platformConfig, nt auth.NewToken) error {
	if len(nt.Sites) == 0 && nt.Park == "" {
		return nil
	}
	sites, err := cfg.loadSites()
	if err != nil {
		return err
	}
	var ids []string
	for _, s := range sites {
		ids = append(ids, s.ID)
	}
	for _, s := range nt.Sites {
		if !slices.Contains(ids, s) {
			return fmt.Errorf("--sites: %q is not a site of this platform (%s)", s, strings.Join(ids, ", "))
		}
	}
	if nt.Park != "" {
		if _, ok := analytics.Parks(sites)[nt.Park]; !ok {
			return fmt.Errorf("--park: %q is not a park of this platform's sites", nt.Park)
		}
	}
	return nil
}

func scopeText(t auth.Token) string {
	switch {
	case len(t.Sites) > 0:
		return ", sites " + strings.Join(t.Sites, ",")
	case t.Park != "":
		return ", park " + t.Park
	}
	return ""
}

func dateOr(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return t.Format(time.DateOnly)
}
