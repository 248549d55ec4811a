package introspect

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// unmarshalString is json.Unmarshal(raw, s) with a fast path for what
// claims and JWS headers nearly always hold: a string with nothing to
// unescape. Its bytes are the value, so no reflection is needed; anything
// else (escapes, invalid UTF-8, null, other types, bad syntax) goes to
// json.Unmarshal, so the result and the errors are exactly Unmarshal's.
func unmarshalString(raw []byte, s *string) error {
	if inner, ok := plainJSONString(raw); ok {
		*s = string(inner)
		return nil
	}
	return json.Unmarshal(raw, s)
}

// unmarshalStrings is json.Unmarshal(raw, list) with a fast path for an
// array of plain strings (see plainJSONString), such as a "scope" or "aud"
// array; any other input goes to json.Unmarshal.
func unmarshalStrings(raw []byte, list *[]string) error {
	if l, ok := plainJSONStringArray(raw); ok {
		*list = l
		return nil
	}
	return json.Unmarshal(raw, list)
}

// plainJSONString reports whether raw is exactly one JSON string whose
// value is the bytes between its quotes (no backslash, no control
// character, valid UTF-8), and returns those bytes.
func plainJSONString(raw []byte) ([]byte, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return nil, false
	}
	inner := raw[1 : len(raw)-1]
	ascii := true
	for _, c := range inner {
		if c == '\\' || c == '"' || c < 0x20 {
			return nil, false
		}
		if c >= utf8.RuneSelf {
			ascii = false
		}
	}
	if !ascii && !utf8.Valid(inner) {
		return nil, false
	}
	return inner, true
}

// plainJSONStringArray parses raw when it is exactly one JSON array of
// plain strings (see plainJSONString), with JSON white space allowed
// between tokens.
func plainJSONStringArray(raw []byte) ([]string, bool) {
	if len(raw) < 2 || raw[0] != '[' {
		return nil, false
	}
	i := skipJSONSpace(raw, 1)
	if i < len(raw) && raw[i] == ']' {
		return []string{}, skipJSONSpace(raw, i+1) == len(raw)
	}
	// Count the elements' upper bound so the slice is allocated once.
	list := make([]string, 0, 1+bytes.Count(raw, []byte{','}))
	for i < len(raw) && raw[i] == '"' {
		end := i + 1
		for end < len(raw) && raw[end] != '"' && raw[end] != '\\' {
			end++
		}
		if end == len(raw) || raw[end] != '"' {
			return nil, false // an escape, or unterminated
		}
		inner, ok := plainJSONString(raw[i : end+1])
		if !ok {
			return nil, false
		}
		list = append(list, string(inner))
		i = skipJSONSpace(raw, end+1)
		if i == len(raw) {
			return nil, false
		}
		switch raw[i] {
		case ',':
			i = skipJSONSpace(raw, i+1)
		case ']':
			return list, skipJSONSpace(raw, i+1) == len(raw)
		default:
			return nil, false
		}
	}
	return nil, false
}
