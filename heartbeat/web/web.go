// Package web holds the console's browser assets (plain HTML, CSS and
// JavaScript, embedded in the binary: the page loads nothing from
// anywhere else) and serves them.
package web

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// Handler serves the console page and its assets.
func Handler() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		// The embedded tree is fixed at build time; "static" is in it.
		panic(err)
	}
	return http.FileServerFS(sub)
}
