package report

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aqualoop/aqualoop/analytics"
)

// Formats of a pack, by file extension.
var Formats = map[string]string{
	"pdf":  "application/pdf",
	"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	"csv":  "text/csv; charset=utf-8",
	"zip":  "application/zip",
}

// ErrFormat is wrapped for an unknown format.
var ErrFormat = errors.New("unknown report format")

// MakerOptions are what making a pack needs beyond Build's options.
type MakerOptions struct {
	Options
	Sites []*analytics.Site
	// Fonts returns the TrueType fonts of the PDF (LoadFonts).
	Fonts func() (Fonts, error)
	// Key returns the site's signing key, creating it on first use when the platform is set up
	// to (LoadKey).
	Key func(site string) (ed25519.PrivateKey, error)
	// SiteFile returns the site model file of a site, hashed into the manifest.
	SiteFile func(site string) (SiteFile, error)
	Logger   *slog.Logger
}

// Maker makes packs for the CLI and the API alike.
type Maker struct{ o MakerOptions }

// NewMaker returns a Maker.
func NewMaker(o MakerOptions) *Maker {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Maker{o: o}
}

// Site returns the model of a site.
func (m *Maker) Site(id string) (*analytics.Site, error) {
	i := slices.IndexFunc(m.o.Sites, func(s *analytics.Site) bool { return s.ID == id })
	if i < 0 {
		return nil, fmt.Errorf("%w %q", ErrUnknownSite, id)
	}
	return m.o.Sites[i], nil
}

// Make builds the pack of a site over period ("2026-11", "2026", "2024..2026") and writes it in
// format (pdf, xlsx, csv, zip) and lang ("" for the site's default) to w. Everything is rendered
// before the first byte is written, so an error leaves w untouched.
func (m *Maker) Make(ctx context.Context, w io.Writer, site, period, format, lang string) error {
	s, err := m.Site(site)
	if err != nil {
		return err
	}
	if _, ok := Formats[format]; !ok {
		return fmt.Errorf("%w %q: one of pdf, xlsx, csv, zip", ErrFormat, format)
	}
	if lang == "" {
		lang = DefaultLang(s.Timezone)
	}
	if lang != LangZH && lang != LangEN {
		return fmt.Errorf("%w: language %q is not zh or en", ErrBadPeriod, lang)
	}
	per, err := ParsePeriod(period, s.Location(), m.o.Now())
	if err != nil {
		return err
	}
	// Resources first: a missing font or key fails before minutes of work.
	var font Fonts
	if format == "pdf" || format == "zip" {
		if font, err = m.o.Fonts(); err != nil {
			return err
		}
	}
	var key ed25519.PrivateKey
	var sf SiteFile
	if format == "zip" {
		if key, err = m.o.Key(s.ID); err != nil {
			return err
		}
		if sf, err = m.o.SiteFile(s.ID); err != nil {
			return err
		}
	}
	start := time.Now()
	p, err := Build(ctx, s, per, m.o.Options)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	switch format {
	case "pdf":
		err = p.WritePDF(&b, lang, font)
	case "xlsx":
		err = p.WriteXLSX(&b, lang)
	case "csv":
		err = p.WriteCSV(&b, lang)
	case "zip":
		err = p.WriteZip(&b, lang, font, sf, key)
	}
	if err != nil {
		return err
	}
	m.o.Logger.Info("evidence pack made", "site", s.ID, "period", per.Label, "format", format, "lang", lang, "bytes", b.Len(), "took", time.Since(start).Round(time.Millisecond))
	_, err = w.Write(b.Bytes())
	return err
}

// Handler serves GET /api/v1/sites/{site}/reports/{period}.{pdf,xlsx,csv,zip}[?lang=zh|en].
// Roles are enforced by the auth middleware in front of it (auditors only).
func (m *Maker) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/sites/{site}/reports/{file}", func(w http.ResponseWriter, r *http.Request) {
		file := r.PathValue("file")
		i := strings.LastIndexByte(file, '.')
		if i < 0 {
			writeError(w, http.StatusNotFound, "ask for {period}.pdf, .xlsx, .csv or .zip, e.g. 2026-11.pdf")
			return
		}
		period, format := file[:i], file[i+1:]
		var b bytes.Buffer
		err := m.Make(r.Context(), &b, r.PathValue("site"), period, format, r.URL.Query().Get("lang"))
		switch {
		case errors.Is(err, ErrUnknownSite), errors.Is(err, ErrFormat):
			writeError(w, http.StatusNotFound, err.Error())
		case errors.Is(err, ErrBadPeriod), errors.Is(err, ErrFuture):
			writeError(w, http.StatusBadRequest, err.Error())
		case errors.Is(err, ErrNoData):
			writeError(w, http.StatusNotFound, err.Error())
		case err != nil:
			m.o.Logger.Error("evidence pack failed; answered 500", "site", r.PathValue("site"), "period", period, "err", err)
			writeError(w, http.StatusInternalServerError, err.Error())
		default:
			w.Header().Set("Content-Type", Formats[format])
			w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-%s.%s"`, r.PathValue("site"), strings.ReplaceAll(period, "..", "-"), format))
			w.Header().Set("Cache-Control", "no-store")
			w.Write(b.Bytes())
		}
	})
	return mux
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
