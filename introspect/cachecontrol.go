package introspect

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxDeltaSeconds is the largest delta-seconds value honoured; RFC 9111
// §1.2.2 says larger values are to be treated as 2^31.
const maxDeltaSeconds = 1 << 31

// parseMaxAge returns the max-age of the response's Cache-Control header(s),
// or -1 when there is none or it cannot be parsed. Every other directive,
// including no-store and no-cache, is ignored on purpose (DESIGN §6): some
// ASes send them on every reply for HTTP intermediaries, and honouring them
// would switch the gateway's cache off. When max-age appears more than once
// the first occurrence wins (RFC 9111 §4.2.1).
func parseMaxAge(h http.Header) time.Duration {
	for _, line := range h.Values("Cache-Control") {
		for _, dir := range strings.Split(line, ",") {
			name, value, hasValue := strings.Cut(strings.TrimSpace(dir), "=")
			if !strings.EqualFold(strings.TrimSpace(name), "max-age") {
				continue
			}
			if !hasValue {
				return -1
			}
			value = strings.TrimSpace(value)
			// RFC 9111 §5.2: senders use the token form, but recipients
			// should accept the quoted-string form too.
			if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
				value = value[1 : len(value)-1]
			}
			secs, ok := parseDeltaSeconds(value)
			if !ok {
				return -1
			}
			return time.Duration(secs) * time.Second
		}
	}
	return -1
}

// parseDeltaSeconds parses 1*DIGIT, saturating at maxDeltaSeconds.
func parseDeltaSeconds(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > maxDeltaSeconds {
		// Only overflow can fail here: all digits were checked.
		return maxDeltaSeconds, true
	}
	return n, true
}

// maxRetryAfter bounds a Retry-After so a hostile or broken value cannot
// overflow time.Duration; callers may cap it further.
const maxRetryAfter = 24 * time.Hour

// parseRetryAfter reads a Retry-After header (RFC 9110 §10.2.3): either
// delta-seconds or an HTTP-date. It returns 0 when absent, unparseable or in
// the past.
func parseRetryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, ok := parseDeltaSeconds(v); ok {
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now) // saturates rather than overflowing
	} else {
		return 0
	}
	return min(max(d, 0), maxRetryAfter)
}
