package introspect

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// hostileMarker stands for AS-controlled text that must not reach an error
// message: a fake token placed after the first 32 bytes of the AS's value,
// which is as much as an error may quote.
const hostileMarker = "LEAKED-eyJhbGciOiJub25lIn0.fake-token"

// hostileText is AS text with everything a log line must not carry raw:
// newlines, quotes, a backslash, a control byte and, past the bound, the
// marker.
const hostileText = "ok\"\n\\\x1b[31m" + "padding-padding-padding-padding-" + hostileMarker

// hostileMediaType survives mime.ParseMediaType (which lowercases it), so
// it is what the gateway reports.
const hostileMediaType = "application/x-padding-padding-padding-" + "leaked-fake-token-value"

// Errors carry at most a short, quoted prefix of anything the AS chose: a
// media type, an issuer, a token type, an error code or description, a
// malformed status line or header. Nothing past the bound, no raw newline.
func TestASTextStaysOutOfErrors(t *testing.T) {
	testKeys(t)
	tests := []struct {
		name string
		call func(t *testing.T) error
	}{
		{"introspection media type", func(t *testing.T) error {
			as := newFakeAS(t, reply(200, "x.y.z", "Content-Type", hostileMediaType))
			_, err := newTestClient(t, as.URL, nil).Introspect(context.Background(), testToken, "")
			return err
		}},
		{"json media type", func(t *testing.T) error {
			as := newFakeAS(t, reply(200, `{"active":true}`, "Content-Type", hostileMediaType))
			_, err := newTestClient(t, as.URL, func(c *Config) { c.Format = FormatJSON }).Introspect(context.Background(), testToken, "")
			return err
		}},
		{"issuer", func(t *testing.T) error {
			as := newFakeAS(t, reply(200, `{"active":true,"iss":`+jsonString(hostileText)+`}`, "Content-Type", "application/json"))
			_, err := newTestClient(t, as.URL, func(c *Config) { c.Format, c.Issuer = FormatJSON, testIssuer }).Introspect(context.Background(), testToken, "")
			return err
		}},
		{"exchange refusal media type", func(t *testing.T) error {
			as := newFakeAS(t, reply(400, `{"error":"invalid_grant"}`, "Content-Type", hostileMediaType))
			_, err := newTestExchanger(t, as.URL, nil).Exchange(context.Background(), testToken, "")
			return err
		}},
		{"exchange error code and description", func(t *testing.T) error {
			as := newFakeAS(t, reply(400, `{"error":`+jsonString(hostileText)+`,"error_description":`+jsonString(hostileText)+`}`, "Content-Type", "application/json"))
			_, err := newTestExchanger(t, as.URL, nil).Exchange(context.Background(), testToken, "")
			return err
		}},
		{"exchange issued_token_type", func(t *testing.T) error {
			as := newFakeAS(t, reply(200, `{"access_token":"a.b.c","token_type":"Bearer","issued_token_type":`+jsonString(hostileText)+`}`, "Content-Type", "application/json"))
			_, err := newTestExchanger(t, as.URL, nil).Exchange(context.Background(), testToken, "")
			return err
		}},
		{"exchange token_type", func(t *testing.T) error {
			as := newFakeAS(t, reply(200, `{"access_token":"a.b.c","token_type":`+jsonString(hostileText)+`,"issued_token_type":"`+TokenTypeJWT+`"}`, "Content-Type", "application/json"))
			_, err := newTestExchanger(t, as.URL, nil).Exchange(context.Background(), testToken, "")
			return err
		}},
		{"malformed status line", func(t *testing.T) error {
			addr := rawAS(t, "HTTP/1.1 2000 padding-padding-padding-padding-"+hostileMarker+"\r\n\r\n")
			_, err := newTestClient(t, "http://"+addr, nil).Introspect(context.Background(), testToken, "")
			return err
		}},
		{"malformed header line", func(t *testing.T) error {
			addr := rawAS(t, "HTTP/1.1 200 OK\r\npadding-padding-padding-padding-"+hostileMarker+"\r\n\r\n")
			_, err := newTestClient(t, "http://"+addr, nil).Introspect(context.Background(), testToken, "")
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(t)
			t.Log(err)
			if err == nil {
				t.Fatal("want an error")
			}
			msg := err.Error()
			for _, leak := range []string{hostileMarker, "leaked-fake-token", "\n", "\x1b"} {
				if strings.Contains(msg, leak) {
					t.Fatalf("error carries AS text %q: %q", leak, msg)
				}
			}
			if len(msg) > 200 {
				t.Fatalf("error is %d bytes long: %q", len(msg), msg)
			}
		})
	}
}

// A certificate the gateway does not trust is described in words of our
// own (the x509 message names the certificate's subjects), and the cause
// stays in the chain.
func TestTransportCauseUntrustedCertificate(t *testing.T) {
	as := httptest.NewTLSServer(reply(200, ""))
	t.Cleanup(as.Close)
	_, err := newTestClient(t, as.URL, nil).Introspect(context.Background(), testToken, "")
	wantKind(t, err, KindUnavailable, 0)
	var cve *tls.CertificateVerificationError
	if !errors.As(err, &cve) || err.Error() != "introspection request failed: tls: certificate signed by an unknown authority" {
		t.Fatalf("err = %q (%T in chain: %v)", err, cve, cve != nil)
	}
}

// The quoting helper bounds and escapes whatever it is given.
func TestQuoteASText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `""`},
		{"application/json", `"application/json"`},
		{"a\"b\nc", `"a\"b\nc"`},
		{strings.Repeat("x", 40), `"` + strings.Repeat("x", 32) + `" (cut)`},
		{strings.Repeat("é", 20), `"` + strings.Repeat("é", 16) + `" (cut)`},
		{strings.Repeat("a", 31) + "é", `"` + strings.Repeat("a", 31) + `" (cut)`},
		{"\xff\x00", `"\xff\x00"`},
	}
	for _, tt := range tests {
		if got := quoteASText(tt.in); got != tt.want {
			t.Errorf("quoteASText(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// rawAS answers every connection with the bytes of resp, whatever was
// asked: an AS speaking broken HTTP.
func rawAS(t *testing.T, resp string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err == nil {
					_ = req.Body.Close()
				}
				_, _ = c.Write([]byte(resp))
			}()
		}
	}()
	return l.Addr().String()
}

func jsonString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte("0123456789abcdef"[r>>4])
			b.WriteByte("0123456789abcdef"[r&15])
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
