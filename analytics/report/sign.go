package report

import (
	"archive/zip"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ErrNoKey is wrapped when a signing or public key file is missing.
var ErrNoKey = errors.New("key file missing")

// ManifestFormat names the manifest's layout.
const ManifestFormat = "aqualoop-evidence-pack/1"

// Names of the files in a pack.
const (
	FileManifest  = "manifest.json"
	FileSignature = "manifest.sig"
	FilePDF       = "report.pdf"
	FileXLSX      = "report.xlsx"
	FileCSV       = "report.csv"
	FileHourly    = "hourly.csv"
	FilePack      = "pack.json"
	FileSite      = "site.yaml"
)

// FileHash is one file's SHA-256.
type FileHash struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// Manifest lists what a pack holds and what it was made from; its signature seals the pack.
type Manifest struct {
	Format    string     `json:"format"`
	Version   string     `json:"aqualoop_version"`
	Site      string     `json:"site"`
	Period    Period     `json:"period"`
	Lang      string     `json:"lang"`
	Generated time.Time  `json:"generated"`
	Files     []FileHash `json:"files"`
	// SiteModel is the site model file the figures were computed on (its copy is site.yaml).
	SiteModel FileHash `json:"site_model"`
	// Days are the hashes of the canonical readings and ledger buckets of each day.
	Days []DayHash `json:"days"`
	// Figures are the headline figures, recomputed by verify --store.
	Figures   map[string]float64 `json:"figures"`
	PublicKey string             `json:"public_key"` // Ed25519, base64
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// headline returns the figures verify recomputes.
func headline(p *Pack) map[string]float64 {
	v := p.Indicators.Volumes
	out := map[string]float64{"vi": v.Vi, "vu": v.Vu, "vr": v.Vr, "vd": v.Vd, "vco": v.Vco, "vl": v.Vl}
	if p.Indicators.ReuseRate != nil {
		out["reuse_rate"] = *p.Indicators.ReuseRate
	}
	if p.Indicators.ReuseRateWithVu != nil {
		out["reuse_rate_with_vu"] = *p.Indicators.ReuseRateWithVu
	}
	return out
}

// SiteFile is the site model file a pack was computed on.
type SiteFile struct {
	Name string
	Data []byte
}

// WriteZip renders every format, hashes each file, and writes the pack: the files, site.yaml
// (a copy of the site model), manifest.json and manifest.sig (the Ed25519 signature of
// manifest.json, base64).
func (p *Pack) WriteZip(w io.Writer, lang string, font Fonts, site SiteFile, key ed25519.PrivateKey) error {
	type file struct {
		name string
		data []byte
	}
	var files []file
	render := func(name string, fn func(io.Writer) error) error {
		var b bytes.Buffer
		if err := fn(&b); err != nil {
			return err
		}
		files = append(files, file{name, b.Bytes()})
		return nil
	}
	if err := render(FilePDF, func(w io.Writer) error { return p.WritePDF(w, lang, font) }); err != nil {
		return err
	}
	if err := render(FileXLSX, func(w io.Writer) error { return p.WriteXLSX(w, lang) }); err != nil {
		return err
	}
	if err := render(FileCSV, func(w io.Writer) error { return p.WriteCSV(w, lang) }); err != nil {
		return err
	}
	if err := render(FileHourly, p.WriteHourlyCSV); err != nil {
		return err
	}
	if err := render(FilePack, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(p)
	}); err != nil {
		return err
	}
	files = append(files, file{FileSite, site.Data})
	m := Manifest{Format: ManifestFormat, Version: p.Version, Site: p.Site.ID, Period: p.Period, Lang: lang, Generated: p.Generated,
		SiteModel: FileHash{Name: filepath.Base(site.Name), SHA256: sum(site.Data), Size: int64(len(site.Data))},
		Days:      p.Days, Figures: headline(p), PublicKey: base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey))}
	for _, f := range files {
		m.Files = append(m.Files, FileHash{Name: f.name, SHA256: sum(f.data), Size: int64(len(f.data))})
	}
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	sig := base64.StdEncoding.EncodeToString(ed25519.Sign(key, mb))
	zw := zip.NewWriter(w)
	for _, f := range append(files, file{FileManifest, mb}, file{FileSignature, []byte(sig + "\n")}) {
		fw, err := zw.CreateHeader(&zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: p.Generated})
		if err != nil {
			return fmt.Errorf("write pack: %w", err)
		}
		if _, err := fw.Write(f.data); err != nil {
			return fmt.Errorf("write pack: %w", err)
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("write pack: %w", err)
	}
	return nil
}

// LoadKey reads a site's Ed25519 private key (PEM, PKCS #8). With create, a missing file is
// created with a new key (mode 0600, its folder 0700): the key is made on first use.
func LoadKey(path string, create bool) (key ed25519.PrivateKey, created bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if !create {
			return nil, false, fmt.Errorf("%w: signing key %s does not exist (run aqualoop report key --site SITE to create it)", ErrNoKey, path)
		}
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, false, fmt.Errorf("generate signing key: %w", err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return nil, false, fmt.Errorf("encode signing key: %w", err)
		}
		data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, false, fmt.Errorf("create key folder: %w", err)
		}
		if err := WriteFileAtomic(path, 0o600, func(w io.Writer) error { _, err := w.Write(data); return err }); err != nil {
			return nil, false, fmt.Errorf("write signing key: %w", err)
		}
		return priv, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read signing key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, false, fmt.Errorf("read signing key %s: not a PEM PRIVATE KEY", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, false, fmt.Errorf("read signing key %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, false, fmt.Errorf("read signing key %s: not an Ed25519 key", path)
	}
	return priv, false, nil
}

// PublicKeyPEM encodes a public key as PEM (PKIX), the form `report key` prints and
// `verify --pubkey` reads.
func PublicKeyPEM(pub ed25519.PublicKey) string {
	der, _ := x509.MarshalPKIXPublicKey(pub)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// ParsePublicKey reads a PEM public key or a base64 raw Ed25519 key.
func ParsePublicKey(data []byte) (ed25519.PublicKey, error) {
	if blk, _ := pem.Decode(data); blk != nil {
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("read public key: %w", err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, errors.New("read public key: not an Ed25519 key")
		}
		return pub, nil
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, errors.New("read public key: neither PEM nor a base64 Ed25519 key")
	}
	return ed25519.PublicKey(raw), nil
}

// WriteFileAtomic writes a file through a temporary file in the same folder and renames it into
// place, so a failed write leaves no partial file.
func WriteFileAtomic(path string, mode os.FileMode, fn func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := fn(tmp); err != nil {
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	ok = true
	return nil
}
