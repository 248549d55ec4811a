package demoas

import "net/http"

// handleCORS registers h for method and path, answering cross-origin
// requests and their OPTIONS preflight: browser-based MCP clients (MCP
// Inspector) read the metadata and keys, register and get tokens from
// another origin. Any origin may: the server uses no cookies, so a response
// is only ever readable with credentials the caller already sent.
func handleCORS(mux *http.ServeMux, method, path string, h http.HandlerFunc) {
	mux.HandleFunc(method+" "+path, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		h(w, r)
	})
	mux.HandleFunc(http.MethodOptions+" "+path, preflight)
}

// preflight answers a CORS preflight request.
func preflight(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, mcp-protocol-version")
	h.Set("Access-Control-Max-Age", "86400")
	w.WriteHeader(http.StatusNoContent)
}
