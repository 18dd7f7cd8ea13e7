package feed

import (
	"net/http"
	"strconv"
)

// favicon is the dashboard's icon (static/favicon.ico, a 16×16 PNG in an
// ICO container), also served at /favicon.ico where browsers look for it.
var favicon = func() []byte {
	b, err := staticFS.ReadFile("static/favicon.ico")
	if err != nil {
		panic("feed: favicon.ico is not embedded: " + err.Error())
	}
	return b
}()

// serveFavicon answers GET /favicon.ico. It is public, like the other
// assets: it holds no data.
func serveFavicon(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "image/x-icon")
	h.Set("Cache-Control", "public, max-age=86400")
	h.Set("Content-Length", strconv.Itoa(len(favicon)))
	w.Write(favicon)
}
