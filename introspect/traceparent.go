package introspect

// validTraceparent reports whether s is a syntactically valid W3C Trace
// Context traceparent header value. Only such a value is passed to the AS:
// the header is copied from the client's request, so anything else could be
// used to smuggle data (or a token) to the AS.
//
// Format: version "-" trace-id "-" parent-id "-" flags, lowercase hex of
// lengths 2, 32, 16 and 2. Version ff is invalid; all-zero ids are invalid;
// version 00 has nothing after the flags, later versions may append
// "-"-prefixed fields (the spec asks parsers to accept them).
func validTraceparent(s string) bool {
	const base = 55 // 2+1+32+1+16+1+2
	if len(s) < base || len(s) > 512 {
		return false
	}
	if s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return false
	}
	version, traceID, parentID, flags := s[0:2], s[3:35], s[36:52], s[53:55]
	for _, part := range []string{version, traceID, parentID, flags} {
		if !isLowerHex(part) {
			return false
		}
	}
	if version == "ff" || allZero(traceID) || allZero(parentID) {
		return false
	}
	if len(s) > base {
		if version == "00" || s[base] != '-' {
			return false
		}
		for i := base; i < len(s); i++ {
			// Future fields: keep to visible ASCII so no header injection
			// or odd bytes reach the AS.
			if c := s[i]; c <= ' ' || c > '~' {
				return false
			}
		}
	}
	return true
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func allZero(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '0' {
			return false
		}
	}
	return true
}
