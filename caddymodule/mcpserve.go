package caddymodule

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/phantomgate/caddy-phantom-token/mcprpc"
)

var (
	errBodyTooLarge = errors.New("request body larger than max_body")
	errBodyRead     = errors.New("reading the request body failed")
)

// serveMCP authorizes a POST on a route with mcp_operation: it reads the
// body (413 past max_body), classifies the one JSON-RPC message in it
// (400), checks the MCP request headers against it (400 with JSON-RPC
// error -32020), then the scopes the operation needs (403 naming all of
// them), and forwards the body unchanged. v is the verdict on the token's
// required_scopes, already known to be valid otherwise.
func (h *Handler) serveMCP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, e *entry, v verdict) error {
	body, err := readBody(r, h.mcp.maxBody)
	switch {
	case errors.Is(err, errBodyTooLarge):
		return caddyhttp.Error(http.StatusRequestEntityTooLarge, err)
	case err != nil:
		return caddyhttp.Error(http.StatusBadRequest, errBodyRead)
	}
	op := &mcpOperation{}
	op.msg, err = mcprpc.Classify(body)
	if err != nil {
		return caddyhttp.Error(http.StatusBadRequest, err)
	}
	if err := mcprpc.CheckHeaders(&op.msg, mcpHeaders(r.Header)); err != nil {
		return writeHeaderMismatch(w, op.msg.ID, err.Error())
	}
	if op.msg.Kind != mcprpc.Response {
		if rule := h.mcp.match(&op.msg); rule != nil {
			if !satisfied(e.scope(), rule.needs) {
				return reject(w, http.StatusForbidden, rule.challenge, errInsufficientScope)
			}
			v = allowed // the rule's needs include required_scopes
		}
	}
	if v == insufficientScope {
		return reject(w, http.StatusForbidden, h.challenges.insufficientScope, errInsufficientScope)
	}
	// The upstream reads exactly the bytes the gateway classified.
	r.Body = &bodyReader{Reader: bytes.NewReader(body)}
	if r.ContentLength < 0 {
		// A chunked body goes on with its length now known.
		r.ContentLength = int64(len(body))
		r.TransferEncoding = nil
	}
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok && op.msg.Kind != mcprpc.Response {
		repl.Set("http.auth.mcp.method", (*mcpMethodPlaceholder)(op))
		repl.Set("http.auth.mcp.name", (*mcpNamePlaceholder)(op))
	}
	return h.forward(w, r, next, e)
}

// readBody reads the whole body, at most limit bytes: one allocation when
// the client sent Content-Length.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, errBodyTooLarge
	}
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	if r.ContentLength >= 0 {
		buf := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			return nil, err
		}
		return buf, nil
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(buf)) > limit {
		return nil, errBodyTooLarge
	}
	return buf, nil
}

// bodyReader is the forwarded body: the bytes read, with a no-op Close
// (one allocation, where io.NopCloser would add a second).
type bodyReader struct{ *bytes.Reader }

func (*bodyReader) Close() error { return nil }

// mcpHeaders reads the MCP request headers.
func mcpHeaders(h http.Header) mcprpc.Headers {
	var out mcprpc.Headers
	if v := h["Mcp-Method"]; len(v) > 0 {
		out.Method, out.HasMethod = v[0], true
	}
	if v := h["Mcp-Name"]; len(v) > 0 {
		out.Name, out.HasName = v[0], true
	}
	if v := h["Mcp-Protocol-Version"]; len(v) > 0 {
		out.ProtocolVersion = v[0]
	}
	return out
}

// writeHeaderMismatch answers 400 with the JSON-RPC error MCP 2026-07-28
// prescribes, echoing the request's id.
func writeHeaderMismatch(w http.ResponseWriter, id []byte, message string) error {
	body := make([]byte, 0, 96+len(id)+len(message))
	body = append(body, `{"jsonrpc":"2.0","id":`...)
	body = append(body, id...)
	body = append(body, `,"error":{"code":`...)
	body = strconv.AppendInt(body, mcprpc.HeaderMismatch, 10)
	body = append(body, `,"message":`...)
	msg, _ := json.Marshal(message) // a string: cannot fail
	body = append(body, msg...)
	body = append(body, "}}"...)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusBadRequest)
	_, err := w.Write(body)
	return err
}

// mcpOperation is a classified request, for its placeholders.
type mcpOperation struct{ msg mcprpc.Message }

type (
	mcpMethodPlaceholder mcpOperation
	mcpNamePlaceholder   mcpOperation
)

func (p *mcpMethodPlaceholder) String() string { return p.msg.Method }
func (p *mcpNamePlaceholder) String() string {
	name, _ := p.msg.Target()
	return name
}
