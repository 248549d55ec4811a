package caddymodule

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Every pair whose decoded key names access_token goes, whatever its
// encoding, case or separator; every other byte of the query stays.
func TestStripAccessTokenQuery(t *testing.T) {
	tests := []struct {
		name, raw, want string
	}{
		{"plain", "a=1&access_token=X&b=2", "a=1&b=2"},
		{"only pair", "access_token=X", ""},
		{"first pair", "access_token=X&b=2", "b=2"},
		{"last pair", "a=1&access_token=X", "a=1"},
		{"every copy", "access_token=X&a=1&access_token=Y&access_token=Z", "a=1"},
		{"escaped underscore", "access%5Ftoken=X", ""},
		{"escaped lowercase hex", "a=1&access%5ftoken=X", "a=1"},
		{"escaped letter", "%61ccess_token=X&b=2", "b=2"},
		{"fully escaped", "%61%63%63%65%73%73%5F%74%6F%6B%65%6E=X&b=2", "b=2"},
		{"uppercase", "ACCESS_TOKEN=X&b=2", "b=2"},
		{"mixed case", "b=2&Access_Token=X", "b=2"},
		{"mixed case escaped", "b=2&ACCESS%5fTOKEN=X", "b=2"},
		{"semicolon before", "a=1;access_token=X", "a=1"},
		{"semicolon after", "access_token=X;a=1", "a=1"},
		{"semicolon pairs kept", "x=1;y=2&access_token=X&z=3", "x=1;y=2&z=3"},
		{"semicolon in value kept", "a=1;2&b=%3B&access_token=X", "a=1;2&b=%3B"},
		{"empty value", "access_token=&b=2", "b=2"},
		{"no equals sign", "access_token&b=2", "b=2"},
		{"no equals sign last", "b=2&access_token", "b=2"},
		{"array syntax", "access_token[]=X&access_token[0]=Y&access_token%5B%5D=Z&b", "b"},
		{"order and encoding kept", "z=9&a=%20x+y&access_token=X&m=%7e&b=%E2%82%AC", "z=9&a=%20x+y&m=%7e&b=%E2%82%AC"},
		{"empty pairs kept", "a=1&&access_token=X&&b=2&", "a=1&&&b=2&"},
		{"undecodable pair kept", "%zz=1&access_token=X&c=%", "%zz=1&c=%"},
		{"undecodable key kept", "access_token%zz=X&b=2", "access_token%zz=X&b=2"},
		{"value is not a key", "a=access_token&b=%41", "a=access_token&b=%41"},
		{"longer key", "access_tokens=X&my_access_token=Y", "access_tokens=X&my_access_token=Y"},
		{"plus is a space", "access+token=X&access_token+=Y", "access+token=X&access_token+=Y"},
		{"only ascii case folds", "access_to%E2%84%AAen=X", "access_to%E2%84%AAen=X"},
		{"nothing to strip", "a=1&b=2", "a=1&b=2"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &http.Request{URL: &url.URL{Path: "/p", RawQuery: tt.raw}, RequestURI: "/p?" + tt.raw}
			if tt.raw == "" {
				r.RequestURI = "/p"
			}
			stripAccessTokenQuery(r)
			if r.URL.RawQuery != tt.want {
				t.Errorf("RawQuery = %q, want %q", r.URL.RawQuery, tt.want)
			}
			wantURI := "/p"
			if tt.want != "" {
				wantURI += "?" + tt.want
			}
			if r.RequestURI != wantURI {
				t.Errorf("RequestURI = %q, want %q", r.RequestURI, wantURI)
			}
		})
	}
}

// RequestURI keeps its own path bytes (and absolute form) and loses only
// the pairs that name access_token.
func TestStripAccessTokenQueryRequestURI(t *testing.T) {
	r := &http.Request{
		URL:        &url.URL{Scheme: "http", Host: "h", Path: "/a b", RawQuery: "x=1&access%5Ftoken=X"},
		RequestURI: "http://h/a%20b?x=1&access%5Ftoken=X",
	}
	stripAccessTokenQuery(r)
	if r.URL.RawQuery != "x=1" || r.RequestURI != "http://h/a%20b?x=1" {
		t.Fatalf("RawQuery = %q, RequestURI = %q", r.URL.RawQuery, r.RequestURI)
	}
}

// A query that names no access_token costs no allocation, whether or not
// it holds escapes.
func TestStripAccessTokenQueryNoAlloc(t *testing.T) {
	for _, raw := range []string{"", "cursor=abc&limit=10", "q=caf%C3%A9&sort=asc;x=1", "%zz=1"} {
		r := &http.Request{URL: &url.URL{Path: "/p", RawQuery: raw}, RequestURI: "/p?" + raw}
		if n := testing.AllocsPerRun(100, func() { stripAccessTokenQuery(r) }); n != 0 {
			t.Errorf("%q: %v allocations, want 0", raw, n)
		}
		if r.URL.RawQuery != raw || r.RequestURI != "/p?"+raw {
			t.Errorf("%q changed to %q, %q", raw, r.URL.RawQuery, r.RequestURI)
		}
	}
}

// BenchmarkStripAccessTokenQuery measures what every forwarded request
// pays: the fast check for queries with nothing to strip, and the walk for
// one that holds escapes.
func BenchmarkStripAccessTokenQuery(b *testing.B) {
	for _, bc := range []struct{ name, raw string }{
		{"empty", ""},
		{"plain", "cursor=eyJwYWdlIjoyfQ&limit=50&sort=name"},
		{"escaped", "q=caf%C3%A9+au+lait&limit=50&sort=name"},
		{"token", "limit=50&access%5Ftoken=opaque-token-value"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := &http.Request{URL: &url.URL{Path: "/mcp"}}
			uri := "/mcp?" + bc.raw
			b.ReportAllocs()
			for b.Loop() {
				r.URL.RawQuery, r.RequestURI = bc.raw, uri
				stripAccessTokenQuery(r)
			}
		})
	}
}

// FuzzStripAccessTokenQuery checks the filter against url.QueryUnescape:
// what is left holds no pair whose key decodes to access_token (or
// access_token[…]), it is the input's pairs in order minus the dropped
// ones, and filtering again changes nothing.
func FuzzStripAccessTokenQuery(f *testing.F) {
	for _, s := range []string{
		"a=1&access_token=X", "access%5Ftoken=X;b=2", "%61ccess_token&&x", "ACCESS_TOKEN[]=1",
		"access_token%zz=1", "%zz=1&c=%", "a=%20x+y;z", "access_token[%zz]=1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, dropped := withoutAccessToken(raw)
		if !dropped && got != raw {
			t.Fatalf("%q: nothing dropped but got %q", raw, got)
		}
		for _, pair := range strings.FieldsFunc(got, isPairSep) {
			key, _, _ := strings.Cut(pair, "=")
			if k, err := url.QueryUnescape(key); err == nil {
				// ASCII folding only, as the filter documents.
				k = strings.Map(func(r rune) rune {
					if 'A' <= r && r <= 'Z' {
						return r + 'a' - 'A'
					}
					return r
				}, k)
				if k == accessTokenKey || strings.HasPrefix(k, accessTokenKey+"[") {
					t.Fatalf("%q: kept %q", raw, pair)
				}
			}
		}
		in, out := strings.FieldsFunc(raw, isPairSep), strings.FieldsFunc(got, isPairSep)
		for _, p := range in {
			if len(out) > 0 && p == out[0] {
				out = out[1:]
			}
		}
		if len(out) > 0 {
			t.Fatalf("%q: %q is not the input's pairs in order", raw, got)
		}
		if again, ok := withoutAccessToken(got); ok || again != got {
			t.Fatalf("%q: a second pass changed %q to %q", raw, got, again)
		}
	})
}

func isPairSep(r rune) bool { return r == '&' || r == ';' }
