package introspect

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzCacheControl fuzzes the AS reply headers that bound how long the
// gateway keeps or waits for an answer: Cache-Control (one or two header
// lines; max-age caps the cache TTL) and Retry-After (the wait a 503
// asks for).
//
// Properties: max-age is -1 (absent or unusable) or a whole number of
// seconds in [0, 2^31] — never negative, so a hostile header cannot
// produce a TTL that wraps around; a result other than -1 needs a max-age
// directive in the header; a valid max-age put in front wins (RFC 9111
// §4.2.1: the first occurrence counts) and saturates at 2^31; Retry-After
// is within [0, 24h].
func FuzzCacheControl(f *testing.F) {
	f.Add("no-cache, no-store, must-revalidate", "", uint32(60))
	f.Add("private, max-age=300", "", uint32(0))
	f.Add("public, max-age=0, s-maxage=30", "no-transform", uint32(1))
	f.Add(`max-age="120"`, "", uint32(9))
	f.Add("MAX-AGE = 60", "max-age=1", uint32(2))
	f.Add("max-age=-5", "", uint32(5))
	f.Add("max-age=99999999999999999999999", "", uint32(1<<31))
	f.Add("max-age", "max-age=10", uint32(3))
	f.Add(`foo="a, max-age=5", max-age=7`, "", uint32(7))
	f.Add("max-age=\t42\t,no-store", "", uint32(42))
	f.Add("Wed, 21 Oct 2015 07:28:00 GMT", "", uint32(0))

	f.Fuzz(func(t *testing.T, line1, line2 string, n uint32) {
		h := http.Header{"Cache-Control": {line1}}
		if line2 != "" {
			h["Cache-Control"] = append(h["Cache-Control"], line2)
		}
		got := parseMaxAge(h)
		if got != -1 {
			if got < 0 || got > maxDeltaSeconds*time.Second || got%time.Second != 0 {
				t.Fatalf("max-age %s out of range for %q", got, h["Cache-Control"])
			}
			if !strings.Contains(strings.ToLower(line1+","+line2), "max-age") {
				t.Fatalf("max-age %s without a max-age directive in %q", got, h["Cache-Control"])
			}
		}

		front := http.Header{"Cache-Control": {"max-age=" + strconv.FormatUint(uint64(n), 10) + ", " + line1}}
		if line2 != "" {
			front["Cache-Control"] = append(front["Cache-Control"], line2)
		}
		want := min(time.Duration(n), maxDeltaSeconds) * time.Second
		if got := parseMaxAge(front); got != want {
			t.Fatalf("leading max-age=%d gives %s, want %s (%q)", n, got, want, front["Cache-Control"])
		}

		for _, v := range []string{line1, line2} {
			ra := parseRetryAfter(http.Header{"Retry-After": {v}}, fixedNow)
			if ra < 0 || ra > maxRetryAfter {
				t.Fatalf("retry-after %s out of range for %q", ra, v)
			}
		}
	})
}
