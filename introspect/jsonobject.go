package introspect

import (
	"encoding/json"
	"errors"
	"unicode/utf8"
)

// errNotJSONObject is parseJSONObject's one error: callers report their own
// message, so the reason (syntax, null, another type) is not kept.
var errNotJSONObject = errors.New("not a json object")

// jsonMember is one member of a top-level object: the unescaped key and the
// exact bytes of its value.
type jsonMember struct {
	key   string
	value []byte
}

// parseJSONObject parses b as exactly one JSON object ("null", arrays,
// scalars and trailing data are rejected) into its members' raw values.
//
// It gives the same result as json.Unmarshal into a
// map[string]json.RawMessage, which every introspection miss used to do
// two to four times, at a fraction of the cost: json.Valid checks the
// syntax without allocating (the same scanner Unmarshal runs first, so the
// accept/reject set is unchanged), and then a plain walk of the top level
// splits the members, where Unmarshal would go through reflection and copy
// every value. Duplicate keys: the last one wins, as in Unmarshal's map
// decoding.
//
// The values alias b instead of being copied. That is safe because every
// caller hands in a buffer of its own that nothing writes to afterwards
// (a fresh body from readAtMost, a fresh base64 decoding, or a value of an
// object that was itself parsed so), and no value outlives the reply: the
// claims are read into strings, which copy.
func parseJSONObject(b []byte) (map[string]json.RawMessage, error) {
	if !json.Valid(b) {
		return nil, errNotJSONObject
	}
	i := skipJSONSpace(b, 0)
	if b[i] != '{' { // Valid input is never empty or all space.
		return nil, errNotJSONObject
	}
	// Collect the members first, so that the map is made once at its size;
	// a JWT's dozen claims fit the array without a heap allocation.
	var buf [16]jsonMember
	members := buf[:0]
	i = skipJSONSpace(b, i+1)
	if b[i] == '}' {
		return map[string]json.RawMessage{}, nil
	}
	for {
		// i is at a key's opening quote: the input is valid.
		end := jsonStringEnd(b, i)
		key, err := jsonKey(b[i:end])
		if err != nil {
			return nil, errNotJSONObject
		}
		i = skipJSONSpace(b, end)
		i = skipJSONSpace(b, i+1) // past the ':'
		vend := jsonValueEnd(b, i)
		members = append(members, jsonMember{key: key, value: b[i:vend:vend]})
		i = skipJSONSpace(b, vend)
		if b[i] == '}' {
			break
		}
		i = skipJSONSpace(b, i+1) // past the ','
	}
	m := make(map[string]json.RawMessage, len(members))
	for _, mb := range members {
		m[mb.key] = mb.value
	}
	return m, nil
}

// jsonKey unescapes a quoted key (with its quotes). A key of plain
// printable ASCII or valid UTF-8 without escapes is its own bytes; any
// other key goes through encoding/json, so that escapes, surrogates and
// invalid UTF-8 (replaced with U+FFFD) come out exactly as Unmarshal
// would have produced them.
func jsonKey(q []byte) (string, error) {
	inner := q[1 : len(q)-1]
	if !hasJSONEscapeOrBadUTF8(inner) {
		return string(inner), nil
	}
	var s string
	err := json.Unmarshal(q, &s)
	return s, err
}

// hasJSONEscapeOrBadUTF8 reports whether the bytes between a valid JSON
// string's quotes need unescaping: a backslash, or invalid UTF-8 (which
// decoding replaces).
func hasJSONEscapeOrBadUTF8(inner []byte) bool {
	for i, c := range inner {
		if c == '\\' {
			return true
		}
		if c >= utf8.RuneSelf {
			// Check the rest at once: backslashes are ASCII and
			// utf8.Valid does not skip them, so look for them too.
			rest := inner[i:]
			for _, d := range rest {
				if d == '\\' {
					return true
				}
			}
			return !utf8.Valid(rest)
		}
	}
	return false
}

// skipJSONSpace returns the index of the first byte at or after i that is
// not JSON white space.
func skipJSONSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// jsonStringEnd returns the index just past the closing quote of the valid
// JSON string that opens at b[i].
func jsonStringEnd(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++ // the escaped byte cannot close the string
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// jsonValueEnd returns the index just past the valid JSON value that
// starts at b[i]: a string, an object or array (counting brackets outside
// strings), or a literal or number (up to the next delimiter).
func jsonValueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return jsonStringEnd(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = jsonStringEnd(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(b)
	default:
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return len(b)
	}
}
