package introspect

// traceparentLen is the length of a version-00 traceparent:
// version "-" trace-id "-" parent-id "-" flags, of 2, 32, 16 and 2
// lowercase hex digits.
const traceparentLen = 55

// forwardableTraceparent returns the W3C Trace Context traceparent to send
// to the AS for the client's value s, or "" when s is not a valid one.
//
// The header is copied from the client's request, so whatever is forwarded
// is client text reaching the AS: only the four fields the gateway has
// checked go out, as a version-00 value. A later version is read as the
// spec asks (its first four fields, followed by the end or "-"), and its
// trailing fields are dropped, since the gateway cannot check what it does
// not understand. Version ff, version 00 with trailing data, and all-zero
// ids are invalid.
func forwardableTraceparent(s string) string {
	if len(s) < traceparentLen || s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return ""
	}
	version, traceID, parentID, flags := s[0:2], s[3:35], s[36:52], s[53:55]
	if !isLowerHex(version) || !isLowerHex(traceID) || !isLowerHex(parentID) || !isLowerHex(flags) {
		return ""
	}
	if version == "ff" || allZero(traceID) || allZero(parentID) {
		return ""
	}
	switch {
	case len(s) == traceparentLen && version == "00":
		return s
	case version == "00":
		return ""
	case len(s) > traceparentLen && s[traceparentLen] != '-':
		return ""
	}
	return "00" + s[2:traceparentLen]
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
