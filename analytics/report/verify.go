package report

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/aqualoop/aqualoop/analytics"
)

// VerifyOptions say what to check a pack against beyond itself.
type VerifyOptions struct {
	// PublicKey, when set, is the key the pack must be signed with; without it the signature is
	// checked against the key in the manifest, which proves integrity but not origin.
	PublicKey ed25519.PublicKey
	// Store, Engine, Site and SiteFile, when Store is set, recompute from the platform: the site
	// model file is compared with the pack's, each day's readings and buckets with the
	// manifest's hashes, and the headline figures with the engine's.
	Store    Store
	Engine   Engine
	Site     *analytics.Site
	SiteFile SiteFile
}

// Verification is the outcome: Problems is empty when the pack checks out.
type Verification struct {
	Manifest *Manifest `json:"manifest,omitempty"`
	// Signer says which key the signature was checked with.
	Signer   string   `json:"signer"`
	Checked  []string `json:"checked"`
	Problems []string `json:"problems"`
	// FirstChangedDay is the first day whose data in the store no longer matches, if any.
	FirstChangedDay string `json:"first_changed_day,omitempty"`
}

// OK reports whether nothing was found wrong.
func (v *Verification) OK() bool { return len(v.Problems) == 0 }

func (v *Verification) fail(format string, args ...any) {
	v.Problems = append(v.Problems, fmt.Sprintf(format, args...))
}

// Verify checks a pack read from r (size bytes).
func Verify(ctx context.Context, r io.ReaderAt, size int64, o VerifyOptions) (*Verification, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("open pack: %w", err)
	}
	files := map[string][]byte{}
	var order []string
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("open %s in pack: %w", f.Name, err)
		}
		b, err := io.ReadAll(io.LimitReader(rc, 1<<30))
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("read %s in pack: %w", f.Name, err)
		}
		files[f.Name] = b
		order = append(order, f.Name)
	}
	v := &Verification{}
	mb, ok := files[FileManifest]
	if !ok {
		return nil, fmt.Errorf("open pack: no %s: not an aqualoop evidence pack", FileManifest)
	}
	var m Manifest
	if err := json.Unmarshal(mb, &m); err != nil {
		v.fail("%s is not valid JSON: %v", FileManifest, err)
		return v, nil
	}
	v.Manifest = &m

	// Signature.
	key := o.PublicKey
	v.Signer = "the key given (--pubkey)"
	embedded, err := base64.StdEncoding.DecodeString(m.PublicKey)
	if err != nil || len(embedded) != ed25519.PublicKeySize {
		v.fail("%s: public_key is not a base64 Ed25519 key", FileManifest)
	}
	if key == nil {
		key = ed25519.PublicKey(embedded)
		v.Signer = "the key in the manifest (integrity only: give --pubkey to check who signed)"
	} else if !bytes.Equal(key, embedded) {
		v.fail("the pack was signed with a different key (%s) than the one given", m.PublicKey)
	}
	sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(files[FileSignature])))
	switch {
	case err != nil || len(sig) != ed25519.SignatureSize:
		v.fail("%s is missing or not a base64 Ed25519 signature", FileSignature)
	case len(key) != ed25519.PublicKeySize || !ed25519.Verify(key, mb, sig):
		v.fail("signature does not match %s: the manifest was changed after signing, or signed by another key", FileManifest)
	default:
		v.Checked = append(v.Checked, "signature of "+FileManifest)
	}

	// Every file against its hash, and nothing unlisted.
	listed := map[string]bool{FileManifest: true, FileSignature: true}
	for _, fh := range m.Files {
		listed[fh.Name] = true
		b, ok := files[fh.Name]
		if !ok {
			v.fail("%s is listed in the manifest but missing from the pack", fh.Name)
			continue
		}
		if got := sum(b); got != fh.SHA256 {
			v.fail("%s was changed after signing: SHA-256 %s, manifest says %s", fh.Name, got, fh.SHA256)
			continue
		}
		v.Checked = append(v.Checked, "SHA-256 of "+fh.Name)
	}
	for _, n := range order {
		if !listed[n] {
			v.fail("%s is in the pack but not in the manifest: added after signing", n)
		}
	}
	if b, ok := files[FileSite]; ok && sum(b) != m.SiteModel.SHA256 {
		v.fail("%s does not hash to the manifest's site_model", FileSite)
	}
	if o.Store == nil {
		return v, nil
	}

	// The site model the platform uses now.
	if got := sum(o.SiteFile.Data); got != m.SiteModel.SHA256 {
		v.fail("site model %s changed since the pack was made: %s", o.SiteFile.Name, firstLineDiff(files[FileSite], o.SiteFile.Data))
	} else {
		v.Checked = append(v.Checked, "site model "+o.SiteFile.Name)
	}
	if o.Site == nil || o.Site.ID != m.Site {
		v.fail("the store's site model is not site %s", m.Site)
		return v, nil
	}
	sc, err := Scan(ctx, o.Store, o.Site, m.Period.From, m.Period.To)
	if err != nil {
		return nil, err
	}
	if len(sc.Days) != len(m.Days) {
		v.fail("the manifest has %d days, the period %d", len(m.Days), len(sc.Days))
	}
	for i := range min(len(sc.Days), len(m.Days)) {
		a, b := m.Days[i], sc.Days[i]
		var what []string
		if a.Readings != b.Readings {
			what = append(what, fmt.Sprintf("readings (%d then, %d now)", a.NReadings, b.NReadings))
		}
		if a.Buckets != b.Buckets {
			what = append(what, fmt.Sprintf("ledger buckets (%d then, %d now)", a.NBuckets, b.NBuckets))
		}
		if len(what) > 0 {
			v.FirstChangedDay = a.Day
			v.fail("data of %s no longer matches the pack: %s differ in the store", a.Day, strings.Join(what, " and "))
			break
		}
	}
	if v.FirstChangedDay == "" {
		v.Checked = append(v.Checked, fmt.Sprintf("readings and ledger of %d days in the store", len(m.Days)))
	}
	if o.Engine != nil {
		ind, err := o.Engine.Indicators(ctx, m.Site, m.Period.From, m.Period.To)
		if err != nil {
			return nil, err
		}
		p := &Pack{Indicators: ind}
		now := headline(p)
		keys := make([]string, 0, len(m.Figures))
		for k := range m.Figures {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		same := true
		for _, k := range keys {
			if math.Abs(now[k]-m.Figures[k]) > 1e-9*math.Max(1, math.Abs(m.Figures[k])) {
				v.fail("figure %s is %v in the pack, %v recomputed from the store", k, m.Figures[k], now[k])
				same = false
			}
		}
		if same {
			v.Checked = append(v.Checked, "headline figures recomputed from the store")
		}
	}
	return v, nil
}

// firstLineDiff names the first line where two texts differ.
func firstLineDiff(then, now []byte) string {
	a, b := strings.Split(string(then), "\n"), strings.Split(string(now), "\n")
	for i := range max(len(a), len(b)) {
		var x, y string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			return fmt.Sprintf("line %d was %q, is now %q", i+1, x, y)
		}
	}
	return "the files differ"
}
