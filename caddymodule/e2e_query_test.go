package caddymodule_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// A token in the query string never reaches the upstream, however its key
// is encoded and whether or not the request was authenticated: an OPTIONS
// preflight without Authorization is passed through untouched except for
// that pair. The other pairs arrive byte for byte, in order.
func TestQueryTokenNeverReachesUpstream(t *testing.T) {
	as, up := newStubAS(t), newRecorder(t)
	g := startCaddy(t, as, up, defaultSite)
	const opaque = "opaque-Query.secret~value"
	as.active(t, opaque, nil)
	tests := []struct {
		name, method, query, want string
		auth                      bool
	}{
		{"escaped key", http.MethodGet, "x=1&access%5Ftoken=" + opaque + "&y=%7E", "x=1&y=%7E", true},
		{"uppercase key", http.MethodGet, "ACCESS_TOKEN=" + opaque + "&y=2", "y=2", true},
		{"semicolon separator", http.MethodGet, "x=1;y=2;access_token=" + opaque + "&z=3", "x=1;y=2&z=3", true},
		{"options with authorization", http.MethodOptions, "%61ccess_token=" + opaque + "&y=2", "y=2", true},
		{"options preflight", http.MethodOptions, "x=1&access_token=" + opaque, "x=1", false},
		{"options preflight escaped", http.MethodOptions, "access%5Ftoken=" + opaque + "&x=a+b", "x=a+b", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := up.count()
			var headers []string
			if tt.auth {
				headers = []string{"Authorization", "Bearer " + opaque}
			}
			resp, _ := g.do(t, tt.method, "/mcp?"+tt.query, headers...)
			if resp.StatusCode != http.StatusOK || up.count() != before+1 {
				t.Fatalf("status = %d, upstream requests %d → %d; want 200 and one forwarded", resp.StatusCode, before, up.count())
			}
			last := up.last(t)
			if last.URL.RawQuery != tt.want {
				t.Errorf("upstream query = %q, want %q", last.URL.RawQuery, tt.want)
			}
			if seen := fmt.Sprint(last.RequestURI, last.URL, last.Header); strings.Contains(seen, opaque) {
				t.Errorf("the opaque token reached the upstream: %s", seen)
			}
		})
	}
}
