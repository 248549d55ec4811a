// Package mcprpc classifies the body of an MCP Streamable HTTP POST: one
// JSON-RPC 2.0 message, whose method and target (a tool or prompt name, a
// resource URI) the gateway authorizes before the MCP server sees it. It
// also checks the MCP 2026-07-28 request headers (Mcp-Method, Mcp-Name)
// against the body, and matches the name patterns of per-operation rules.
//
// The classifier is strict where an upstream JSON decoder could read the
// message differently from the gateway: duplicate keys, and keys that
// differ only in case (Go's encoding/json matches them case-insensitively),
// among the members it authorizes on are refused, as are batches (removed
// from MCP in 2025-06-18) and anything that is not one request,
// notification or response.
//
// This package knows nothing of Caddy or of tokens.
package mcprpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// Kind is what a message is.
type Kind uint8

const (
	// Request has a method and an id.
	Request Kind = iota + 1
	// Notification has a method and no id.
	Notification
	// Response has an id and a result or an error, and no method: older
	// protocol versions let a client answer a server's request by POST.
	Response
)

// Message is what the gateway authorizes on.
type Message struct {
	Kind   Kind
	Method string // "" for a response
	// Name is params.name and URI params.uri, each "" when absent; Has*
	// tell an absent member from an empty string.
	Name, URI       string
	HasName, HasURI bool
	// ID is the raw JSON of the id ("null" when absent), for error replies.
	ID []byte
}

// Target is the name an operation rule's pattern and the Mcp-Name header
// refer to: params.uri for resources/read, params.name for tools/call and
// prompts/get, and nothing (ok false) for other methods.
func (m *Message) Target() (string, bool) {
	switch m.Method {
	case "tools/call", "prompts/get":
		return m.Name, m.HasName
	case "resources/read":
		return m.URI, m.HasURI
	}
	return "", false
}

// HasTarget reports whether method's requests name a target (see Target).
func HasTarget(method string) bool {
	return method == "tools/call" || method == "prompts/get" || method == "resources/read"
}

// Errors of Classify. Each makes the request a 400.
var (
	ErrNotJSON   = errors.New("body is not JSON")
	ErrBatch     = errors.New("JSON-RPC batches are not supported (removed from MCP in 2025-06-18)")
	ErrNotObject = errors.New("body is not a JSON-RPC message object")
	ErrVersion   = errors.New(`"jsonrpc" must be "2.0"`)
	ErrMethod    = errors.New(`"method" must be a string`)
	ErrShape     = errors.New("body is not a JSON-RPC request, notification or response")
	ErrAmbiguous = errors.New("duplicate or case-variant member: the message is ambiguous")
	ErrID        = errors.New(`"id" must be a string, a number or null`)
	ErrParams    = errors.New(`"params.name" and "params.uri" must be strings`)
)

// Classify parses body as one JSON-RPC 2.0 message. Strings in the result
// may alias body, which the caller must not modify while it uses them.
func Classify(body []byte) (Message, error) {
	var m Message
	if !valid(body) {
		return m, ErrNotJSON
	}
	i := skipSpace(body, 0)
	switch body[i] {
	case '{':
	case '[':
		return m, ErrBatch
	default:
		return m, ErrNotObject
	}
	var seen uint8 // bit per top-level member below
	const (
		sJSONRPC = 1 << iota
		sMethod
		sParams
		sID
		sResult
		sError
	)
	var params []byte
	for it := newMembers(body, i); ; {
		key, value, ok := it.next()
		if !ok {
			break
		}
		var bit uint8
		switch {
		case key == "jsonrpc":
			bit = sJSONRPC
			if string(value) != `"2.0"` {
				return Message{}, ErrVersion
			}
		case key == "method":
			bit = sMethod
			if value[0] != '"' {
				return Message{}, ErrMethod
			}
			m.Method = decodeString(value)
		case key == "params":
			bit, params = sParams, value
		case key == "id":
			bit, m.ID = sID, value
			if c := value[0]; c != '"' && c != 'n' && c != '-' && (c < '0' || c > '9') {
				return Message{}, ErrID
			}
		case key == "result":
			bit = sResult
		case key == "error":
			bit = sError
		case foldsTo(key, "jsonrpc", "method", "params", "id", "result", "error"):
			return Message{}, ErrAmbiguous
		default:
			continue
		}
		if seen&bit != 0 {
			return Message{}, ErrAmbiguous
		}
		seen |= bit
	}
	if seen&sJSONRPC == 0 {
		return Message{}, ErrVersion
	}
	if m.ID == nil {
		m.ID = []byte("null")
	}
	switch {
	case seen&sMethod != 0 && seen&(sResult|sError) == 0:
		m.Kind = Notification
		if seen&sID != 0 {
			m.Kind = Request
		}
	case seen&sMethod == 0 && seen&sID != 0 && (seen&sResult == 0) != (seen&sError == 0) && seen&sParams == 0:
		m.Kind = Response
		return m, nil
	default:
		return Message{}, ErrShape
	}
	if params != nil && params[0] == '{' {
		if err := m.readParams(params); err != nil {
			return Message{}, err
		}
	}
	return m, nil
}

// readParams reads params.name and params.uri.
func (m *Message) readParams(params []byte) error {
	for it := newMembers(params, 0); ; {
		key, value, ok := it.next()
		if !ok {
			return nil
		}
		var dst *string
		var has *bool
		switch {
		case key == "name":
			dst, has = &m.Name, &m.HasName
		case key == "uri":
			dst, has = &m.URI, &m.HasURI
		case foldsTo(key, "name", "uri"):
			return ErrAmbiguous
		default:
			continue
		}
		if *has {
			return ErrAmbiguous
		}
		if value[0] != '"' {
			return ErrParams
		}
		*dst, *has = decodeString(value), true
	}
}

// foldsTo reports whether key equals one of names but for case, Unicode
// simple folding included ("paramſ" with a long s is "params" to Go's
// encoding/json).
func foldsTo(key string, names ...string) bool {
	for _, n := range names {
		if strings.EqualFold(key, n) {
			return true
		}
	}
	return false
}

// members iterates over the members of a valid JSON object.
type members struct {
	b    []byte
	i    int
	done bool
}

// newMembers starts at the object's '{' at b[i].
func newMembers(b []byte, i int) members {
	i = skipSpace(b, i+1)
	return members{b: b, i: i, done: b[i] == '}'}
}

// next returns the next member, its key unescaped and its value's bytes.
func (it *members) next() (string, []byte, bool) {
	if it.done {
		return "", nil, false
	}
	b, i := it.b, it.i
	end := stringEnd(b, i)
	key := decodeString(b[i:end])
	i = skipSpace(b, end)
	i = skipSpace(b, i+1) // past ':'
	vend := valueEnd(b, i)
	value := b[i:vend]
	i = skipSpace(b, vend)
	if b[i] == '}' {
		it.done = true
	} else {
		it.i = skipSpace(b, i+1) // past ','
	}
	return key, value, true
}

// decodeString returns the value of a valid JSON string token as
// encoding/json decodes it: a view of its bytes when it has no escapes and
// is valid UTF-8 (the common case, no allocation); otherwise decoded, with
// invalid UTF-8 replaced by U+FFFD as the upstream's decoder would.
func decodeString(tok []byte) string {
	inner := tok[1 : len(tok)-1]
	if bytes.IndexByte(inner, '\\') >= 0 || !utf8.Valid(inner) {
		var s string
		_ = json.Unmarshal(tok, &s) // valid: cannot fail
		return s
	}
	return unsafe.String(unsafe.SliceData(inner), len(inner))
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index just past the valid string token starting
// at b[i].
func stringEnd(b []byte, i int) int {
	i++
	for {
		q := i + bytes.IndexByte(b[i:], '"')
		// The quote is escaped if an odd number of backslashes precede it.
		n := 0
		for j := q - 1; j >= i && b[j] == '\\'; j-- {
			n++
		}
		if n%2 == 0 {
			return q + 1
		}
		i = q + 1
	}
}

// valueEnd returns the index just past the value starting at b[i].
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for ; ; i++ {
			switch b[i] {
			case '"':
				i = stringEnd(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
	}
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
		i++
	}
	return i
}
