package dpop

import "testing"

func TestNormalizeURI(t *testing.T) {
	cases := []struct {
		in, want string // want "" = refused
	}{
		{"https://example.com/a", "https://example.com/a"},
		{"HTTPS://Example.COM:443/a", "https://example.com/a"},
		{"https://example.com:443/a", "https://example.com/a"},
		{"http://example.com:80/a", "http://example.com/a"},
		{"http://example.com:443/a", "http://example.com:443/a"},
		{"https://example.com:80/a", "https://example.com:80/a"},
		{"https://example.com:8443/a", "https://example.com:8443/a"},
		{"https://example.com:/a", "https://example.com/a"},
		{"https://example.com", "https://example.com/"},
		{"https://example.com?q", "https://example.com/"},
		{"https://example.com/a?q=1&r#f", "https://example.com/a"},
		{"https://example.com/a#f?g", "https://example.com/a"},
		{"https://example.com/%7euser/%2f%2F", "https://example.com/~user/%2F%2F"},
		{"https://example.com/%41%62c", "https://example.com/Abc"},
		{"https://example.com/a/./b/../c", "https://example.com/a/c"},
		{"https://example.com/a/b/c/./../../g", "https://example.com/a/g"},
		{"https://example.com/../a", "https://example.com/a"},
		{"https://example.com/a/..", "https://example.com/"},
		{"https://example.com/a/.", "https://example.com/a/"},
		{"https://example.com/%2E%2E/a", "https://example.com/a"},
		{"https://example.com/a//b", "https://example.com/a//b"},
		{"https://example.com/.well-known/x", "https://example.com/.well-known/x"},
		{"https://example.com/a:b@c!$&'()*+,;=-._~", "https://example.com/a:b@c!$&'()*+,;=-._~"},
		{"https://EX%41MPLE.com/", "https://example.com/"},
		{"https://127.0.0.1:443/", "https://127.0.0.1/"},
		{"https://[2001:DB8::1]:443/a", "https://[2001:db8::1]/a"},
		{"https://[2001:db8::1]:8443/a", "https://[2001:db8::1]:8443/a"},
		{"https://[::1]/", "https://[::1]/"},

		{"", ""},
		{"/a", ""},
		{"example.com/a", ""},
		{"//example.com/a", ""},
		{"ftp://example.com/a", ""},
		{"https:/example.com/a", ""},
		{"https:///a", ""},
		{"https://:443/a", ""},
		{"https://user@example.com/a", ""},
		{"https://user:pw@example.com/a", ""},
		{"https://example.com:44a3/a", ""},
		{"https://example.com:-1/a", ""},
		{"https://exa mple.com/a", ""},
		{"https://example.com/a b", ""},
		{"https://example.com/a%", ""},
		{"https://example.com/a%2", ""},
		{"https://example.com/a%zz", ""},
		{"https://example.com/a\"b", ""},
		{"https://example.com/a\\b", ""},
		{"https://example.com/é", ""},
		{"https://[2001:db8::1/a", ""},
		{"https://[2001:db8::1]x/a", ""},
		{"https://[127.0.0.1]/a", ""},
		{"https://[fe80::1%25eth0]/a", ""},
		{"https://[v1.x]/a", ""},
	}
	for _, tc := range cases {
		got, ok := normalizeURI(tc.in)
		if tc.want == "" {
			if ok {
				t.Errorf("normalizeURI(%q) = %q, want refused", tc.in, got)
			}
			continue
		}
		if !ok || got != tc.want {
			t.Errorf("normalizeURI(%q) = %q, %v; want %q", tc.in, got, ok, tc.want)
		}
	}
}
