package mcprpc

import (
	"encoding/base64"
	"errors"
	"strings"
)

// HeaderMismatch is the JSON-RPC error code MCP 2026-07-28 gives a request
// whose Mcp-Method or Mcp-Name header is missing, malformed or differs
// from its body.
const HeaderMismatch = -32020

// HeadersRequiredFrom is the first protocol version whose clients must send
// Mcp-Method (and Mcp-Name where the method names a target).
const HeadersRequiredFrom = "2026-07-28"

// Headers are the request headers the check reads.
type Headers struct {
	Method, Name       string
	HasMethod, HasName bool
	ProtocolVersion    string
}

// CheckHeaders checks the MCP request headers against the classified body.
// A header that is present must match; from protocol version 2026-07-28 on
// (compared as dates, later unknown versions included) Mcp-Method, and
// Mcp-Name for the methods that name a target, must be present. Mcp-Name on
// other methods is ignored. The error's text is the JSON-RPC message.
func CheckHeaders(m *Message, h Headers) error {
	required := versionAtLeast(h.ProtocolVersion, HeadersRequiredFrom)
	switch {
	case h.HasMethod && h.Method != m.Method:
		return errors.New("Mcp-Method header does not match the body's method")
	case !h.HasMethod && required && m.Kind != Response:
		return errors.New("Mcp-Method header is required from protocol version " + HeadersRequiredFrom)
	}
	target, named := m.Target()
	if !HasTarget(m.Method) {
		return nil
	}
	if !h.HasName {
		if required {
			return errors.New("Mcp-Name header is required for " + m.Method + " from protocol version " + HeadersRequiredFrom)
		}
		return nil
	}
	name, err := DecodeName(h.Name)
	if err != nil {
		return err
	}
	if !named || name != target {
		return errors.New("Mcp-Name header does not match the body's " + targetMember(m.Method))
	}
	return nil
}

func targetMember(method string) string {
	if method == "resources/read" {
		return "params.uri"
	}
	return "params.name"
}

// DecodeName undoes the Mcp-Name encoding: a value in the sentinel form
// =?base64?<standard base64>?= is decoded, any other value is taken as is.
func DecodeName(v string) (string, error) {
	inner, ok := strings.CutPrefix(v, "=?base64?")
	if !ok {
		return v, nil
	}
	inner, ok = strings.CutSuffix(inner, "?=")
	if !ok {
		return "", errors.New("Mcp-Name header: unterminated =?base64?…?= value")
	}
	b, err := base64.StdEncoding.Strict().DecodeString(inner)
	if err != nil {
		return "", errors.New("Mcp-Name header: invalid base64 in =?base64?…?= value")
	}
	return string(b), nil
}

// versionAtLeast compares two YYYY-MM-DD protocol versions as dates. A
// version that is not a date is not at least anything.
func versionAtLeast(v, min string) bool {
	if !isDate(v) {
		return false
	}
	return v >= min // same-width digits: string order is date order
}

func isDate(v string) bool {
	if len(v) != 10 || v[4] != '-' || v[7] != '-' {
		return false
	}
	for i, c := range []byte(v) {
		if i != 4 && i != 7 && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}
