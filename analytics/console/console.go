// Package console is the operators' web console: the site overview, the water balance diagram
// (水平衡图), trends, meters, withdrawal plans, alerts and the park view, in Chinese and English.
// It is a small hand-written page (HTML, CSS, JavaScript with hand-drawn SVG, no library and no
// build step) embedded in the binary with go:embed, so a plant without internet serves it as it
// is, and it reads only the JSON API. Hub pushes the evaluator's snapshots to the page as
// server-sent events, so the page moves when the data does instead of polling whole snapshots.
//
// Routes (cmd mounts them beside the API):
//
//	GET /, /login, /ui/...   the page (the route after # picks the view); /login reads #token=
//	GET /ui/assets/...       its scripts, styles and icon
//	GET /api/v1/events       Hub: server-sent events, ?site= to follow one site or park
package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed assets
var assets embed.FS

// Handler serves the console page and its assets.
func Handler() http.Handler {
	sub, err := fs.Sub(assets, "assets")
	var index []byte
	if err == nil {
		index, err = fs.ReadFile(sub, "index.html")
	}
	if err != nil { // cannot happen: the folder is embedded above, and a test loads the page
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			writeError(w, http.StatusInternalServerError, "console assets: "+err.Error())
		})
	}
	// The assets' URLs carry a hash of their content, so a browser caches them for good and
	// still loads the new ones after an upgrade.
	sum := sha256.New()
	_ = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := fs.ReadFile(sub, p)
			sum.Write([]byte(p))
			sum.Write(b)
		}
		return err
	})
	version := hex.EncodeToString(sum.Sum(nil))[:12]
	index = bytes.ReplaceAll(index, []byte("{{version}}"), []byte(version))
	files := http.StripPrefix("/ui/assets/", http.FileServerFS(sub))

	mux := http.NewServeMux()
	page := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		// Scripts only from the binary; the page sets inline styles (bar widths) but runs no
		// inline script, and talks only to its own origin.
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		w.Write(index)
	}
	mux.HandleFunc("GET /{$}", page)
	mux.HandleFunc("GET /login", page)
	mux.HandleFunc("GET /ui/{$}", page)
	mux.HandleFunc("GET /ui/assets/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("v") == version {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})
	return mux
}
