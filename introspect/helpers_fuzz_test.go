package introspect

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// Shared plumbing of the fuzz targets. The targets go through the public
// entry points (Introspect, Exchange) with an in-memory http.RoundTripper
// standing in for the AS, so they exercise exactly the code a real reply
// meets — status dispatch, media type, body cap, parsing, verification —
// without sockets, and survive refactors of the internal helpers. The AS
// key set is served from memory too; keys are ES256 because P-256
// generation and signing are fast enough to sign a fuzzed payload on every
// execution.

// fuzzEndpoint and fuzzJWKSURI are never dialled: fuzzTransport answers.
const (
	fuzzEndpoint = "https://as.example.com/introspect"
	fuzzJWKSURI  = "https://as.example.com/jwks"
	fuzzKID      = "fuzz-ec1"
)

// maxErrLen bounds an error message. The longest fixed message is about
// 150 bytes; anything much longer carries input the AS chose.
const maxErrLen = 256

// leakWindow is the length of input run that an error message must never
// repeat: longer than the AS text a message may quote (quoteASText keeps
// asTextMax bytes) together with the framing right after it (the closing
// quote and " (cut)"), which the AS's next bytes may equal by chance (the
// fuzzer found `000…0"`), yet short enough to catch a token, a JWT or a
// body being echoed.
const leakWindow = asTextMax + len(`" (cut)`) + 1

var (
	fuzzKeysOnce sync.Once
	fuzzASKey    *ecdsa.PrivateKey // in the AS key set
	fuzzRogueKey *ecdsa.PrivateKey // not in it, published under the same kid
	fuzzJWKS     []byte
)

func fuzzKeys(tb testing.TB) {
	tb.Helper()
	fuzzKeysOnce.Do(func() {
		var err error
		if fuzzASKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if fuzzRogueKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		fuzzJWKS = keySetJSON(tb, publicJWK(tb, fuzzASKey, fuzzKID, "ES256"))
	})
}

// fuzzTransport is an http.RoundTripper from a function.
type fuzzTransport func(*http.Request) (*http.Response, error)

func (f fuzzTransport) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// fuzzReply is the AS reply a fuzz execution hands to the client.
type fuzzReply struct {
	status int
	header http.Header
	body   string
}

// fuzzStatus maps a fuzzed number onto 100–599, keeping the statuses the
// parsers treat specially (200, 204, 400, 503) one small step away.
func fuzzStatus(n uint16) int { return 100 + int(n)%500 }

// replyHeader builds the reply's header; empty values are left out, as a
// real AS that sends no such header would.
func replyHeader(contentType, cacheControl string) http.Header {
	h := http.Header{}
	if contentType != "" {
		h["Content-Type"] = []string{contentType}
	}
	if cacheControl != "" {
		h["Cache-Control"] = []string{cacheControl}
	}
	return h
}

// fuzzHTTPClient answers every request to the AS endpoint with *reply (read
// at call time, so one client serves a whole fuzz worker) and every request
// to fuzzJWKSURI with the AS key set. Redirects are handed back, as New's
// own client does.
func fuzzHTTPClient(reply **fuzzReply) *http.Client {
	return &http.Client{
		CheckRedirect: noRedirects,
		Transport: fuzzTransport(func(r *http.Request) (*http.Response, error) {
			if r.Body != nil {
				_, _ = io.Copy(io.Discard, r.Body)
				r.Body.Close()
			}
			if r.URL.String() == fuzzJWKSURI {
				return &http.Response{
					StatusCode: http.StatusOK,
					Header:     http.Header{"Content-Type": {"application/jwk-set+json"}},
					Body:       io.NopCloser(strings.NewReader(string(fuzzJWKS))),
					Request:    r,
				}, nil
			}
			rep := *reply
			return &http.Response{
				StatusCode: rep.status,
				Header:     rep.header,
				Body:       io.NopCloser(strings.NewReader(rep.body)),
				Request:    r,
			}, nil
		}),
	}
}

// fuzzVerifier is a JWKSVerifier whose key set comes from memory.
func fuzzVerifier(f *testing.F) *JWKSVerifier {
	f.Helper()
	fuzzKeys(f)
	ctx, cancel := context.WithCancel(context.Background())
	f.Cleanup(cancel)
	var none *fuzzReply // the verifier only ever asks for the key set
	v, err := NewJWKSVerifier(ctx, fuzzJWKSURI, fuzzHTTPClient(&none))
	if err != nil {
		f.Fatal(err)
	}
	return v
}

// signPayload signs payload (any bytes, not necessarily JSON) as a compact
// JWS with ES256 under fuzzKID, by the AS key or, when rogue, by a key the
// AS key set does not hold. typ "" leaves the header without "typ".
func signPayload(tb testing.TB, payload []byte, typ string, rogue bool) string {
	tb.Helper()
	hdr := jws.NewHeaders()
	_ = hdr.Set(jws.KeyIDKey, fuzzKID)
	if typ != "" {
		_ = hdr.Set(jws.TypeKey, typ)
	}
	key := fuzzASKey
	if rogue {
		key = fuzzRogueKey
	}
	out, err := jws.Sign(payload, jws.WithKey(jwa.ES256, key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		tb.Fatal(err)
	}
	return string(out)
}

// signMember replaces the member name of the JSON object body, when it is
// itself a JSON object, by a compact JWS signed over that object (by the AS
// key, or when rogue by a key the AS does not publish). This lets the
// fuzzer write the claims of a JWT nested in a reply in plain JSON and
// still get past signature verification. Other bodies are returned
// unchanged.
func signMember(tb testing.TB, body, name string, rogue bool) string {
	tb.Helper()
	var obj map[string]json.RawMessage
	if json.Unmarshal([]byte(body), &obj) != nil || obj == nil {
		return body
	}
	inner := obj[name]
	if len(inner) == 0 || inner[0] != '{' {
		return body
	}
	jwt, _ := json.Marshal(signPayload(tb, inner, "at+jwt", rogue))
	obj[name] = jwt
	out, err := json.Marshal(obj)
	if err != nil {
		return body
	}
	return string(out)
}

// checkErr asserts the properties every error from the AS path has: it is
// an *Error of a known kind carrying the reply's status, its message has
// the project's style, is bounded, and repeats no run of leakWindow bytes
// of any input the AS controls (allowed lists config values and fixed
// strings the message may legitimately quote).
func checkErr(t *testing.T, err error, status int, inputs []string, allowed ...string) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error is %T, want *Error: %v", err, err)
	}
	switch e.Kind {
	case KindUnavailable, KindBadResponse, KindRejected:
	default:
		t.Fatalf("error kind %s", e.Kind)
	}
	if e.Status != status {
		t.Fatalf("error status %d, want the reply's %d (err: %v)", e.Status, status, err)
	}
	if e.RetryAfter < 0 || e.RetryAfter > maxRetryAfter {
		t.Fatalf("retry-after %s out of [0, %s]", e.RetryAfter, maxRetryAfter)
	}
	msg := err.Error()
	if len(msg) > maxErrLen {
		t.Fatalf("error message is %d bytes (> %d), it carries AS input: %.300q", len(msg), maxErrLen, msg)
	}
	assertNoLeak(t, err)
	if run := leakedRun(msg, inputs, allowed); run != "" {
		t.Fatalf("error message repeats AS input %q: %q", run, msg)
	}
	return e
}

// leakedRun returns a leakWindow-byte run of one of inputs that msg
// contains and that is not part of an allowed string (or of its %q form,
// the way messages quote configured values), or "".
func leakedRun(msg string, inputs, allowed []string) string {
	if len(msg) < leakWindow {
		return ""
	}
	windows := make(map[string]bool, len(msg))
	for i := 0; i+leakWindow <= len(msg); i++ {
		windows[msg[i:i+leakWindow]] = true
	}
	for _, in := range inputs {
		for i := 0; i+leakWindow <= len(in); i++ {
			w := in[i : i+leakWindow]
			if !windows[w] || containedIn(w, allowed) {
				continue
			}
			return w
		}
	}
	return ""
}

func containedIn(s string, list []string) bool {
	for _, l := range list {
		if strings.Contains(l, s) || strings.Contains(strconv.Quote(l), s) {
			return true
		}
	}
	return false
}

// checkMaxAge asserts a Result's MaxAge is "absent" (-1) or a whole number
// of seconds within what RFC 9111 allows, and is what the reply's
// Cache-Control said.
func checkMaxAge(t *testing.T, got time.Duration, h http.Header) {
	t.Helper()
	if got != -1 && (got < 0 || got > maxDeltaSeconds*time.Second || got%time.Second != 0) {
		t.Fatalf("max-age %s out of range", got)
	}
	if want := parseMaxAge(h); got != want {
		t.Fatalf("result max-age %s, header says %s", got, want)
	}
}

// checkJWT asserts a JWT the gateway would forward is a compact JWS of
// three base64url segments whose header is a JSON object and is not an RFC
// 9701 introspection response.
func checkJWT(t *testing.T, jwt string) {
	t.Helper()
	segs := strings.Split(jwt, ".")
	if len(segs) != 3 {
		t.Fatalf("forwarded jwt has %d segments", len(segs))
	}
	for i, s := range segs {
		if s == "" {
			t.Fatalf("forwarded jwt segment %d is empty", i)
		}
		if _, err := base64.RawURLEncoding.DecodeString(s); err != nil {
			t.Fatalf("forwarded jwt segment %d is not base64url: %v", i, err)
		}
	}
	hb, _ := base64.RawURLEncoding.DecodeString(segs[0])
	var hdr map[string]any
	if err := json.Unmarshal(hb, &hdr); err != nil {
		t.Fatalf("forwarded jwt header is not a json object: %v", err)
	}
	if typ, _ := hdr["typ"].(string); strings.Contains(strings.ToLower(typ), "token-introspection") {
		t.Fatalf("forwarded jwt is an rfc 9701 introspection response (typ %q)", typ)
	}
	if alg, _ := hdr["alg"].(string); alg == "" || strings.EqualFold(alg, "none") {
		t.Fatalf("forwarded jwt has alg %q", alg)
	}
}

// checkInactive asserts an inactive Result carries nothing but MaxAge.
func checkInactive(t *testing.T, res *Result) {
	t.Helper()
	if !reflect.DeepEqual(*res, Result{MaxAge: res.MaxAge}) {
		t.Fatalf("inactive result carries data: %+v", res)
	}
}

// checkDates asserts the dates of a Result are either absent or within the
// NumericDate range the parser allows.
func checkDates(t *testing.T, res *Result) {
	t.Helper()
	for _, d := range []time.Time{res.ExpiresAt, res.NotBefore, res.IssuedAt, res.JWTExpiresAt} {
		if !d.IsZero() && (d.Unix() < 0 || d.Unix() > maxNumericDate) {
			t.Fatalf("date %v out of range in %+v", d, res)
		}
	}
}

// jsonObject decodes s as a JSON object independently of the parser under
// test, for oracles; ok is false when it is not one. A number too large for
// a float64 (1e309) is still valid JSON, which the gateway accepts when it
// does not read that member: such numbers stay json.Number here (so an
// oracle's float64 assertion fails), the others become float64 as with
// json.Unmarshal.
func jsonObject(s []byte) (obj map[string]any, ok bool) {
	if !json.Valid(s) {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(s))
	dec.UseNumber()
	if dec.Decode(&obj) != nil || obj == nil {
		return nil, false
	}
	return numbersToFloats(obj).(map[string]any), true
}

// numbersToFloats replaces, in a value decoded with UseNumber, every
// json.Number that fits a float64 by that float64.
func numbersToFloats(v any) any {
	switch v := v.(type) {
	case json.Number:
		if f, err := v.Float64(); err == nil {
			return f
		}
		return v
	case map[string]any:
		for k, e := range v {
			v[k] = numbersToFloats(e)
		}
		return v
	case []any:
		for i, e := range v {
			v[i] = numbersToFloats(e)
		}
		return v
	}
	return v
}

// payloadClaims decodes the payload of a compact JWS, for oracles.
func payloadClaims(jwt string) (map[string]any, bool) {
	segs := strings.Split(jwt, ".")
	if len(segs) != 3 {
		return nil, false
	}
	b, err := base64.RawURLEncoding.DecodeString(segs[1])
	if err != nil {
		return nil, false
	}
	return jsonObject(b)
}
