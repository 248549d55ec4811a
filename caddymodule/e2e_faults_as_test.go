package caddymodule_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// faultMode is how the fault-injecting AS answers introspection requests.
type faultMode int

const (
	modeNormal        faultMode = iota
	modeSlow                    // answers after slowBy, longer than the gateway's timeout
	modeReset                   // resets the connection (SO_LINGER 0, then close)
	modeHuge                    // 200 with a 10 MiB body
	modeGarbage                 // 200 with random bytes in the right media type
	modeWrongType               // 200 with a valid answer in text/html
	modeTruncated               // 200 whose body stops short of its Content-Length
	modeOtherAudience           // a valid JWT issued for another resource
	modeOtherToken              // the JWT the AS issued for the warm token
)

// otherAudience is a resource the gateway does not protect.
const otherAudience = "https://other.example.com/mcp"

// Tokens starting with rotatedPrefix are answered with JWTs signed by the
// second key, which the JWKS publishes only once rotate is called.
const rotatedPrefix = "rotated-"

// faultAS is an authorization server whose failures a test switches on
// and off while a gateway runs under load. It speaks the Curity jwt format
// (200 application/jwt, the access-token JWT) or RFC 7662 JSON with the JWT
// in a phantom_token member, signs with RS256 keys published at /jwks, and
// records every JWT it handed out as a valid decision for a token: the
// upstream guard accepts only those.
type faultAS struct {
	format string // "jwt" or "json"
	addr   string
	url    string

	keys [2]jwk.Key // [0] kid fault-1, always published; [1] kid fault-2, after rotate

	conns connCounter // open connections to the AS

	mu         sync.Mutex
	srv        *http.Server
	down       bool
	downs      []window // when the listener was closed
	mode       faultMode
	slowBy     time.Duration
	jwksDelay  time.Duration
	jwksDown   bool
	rotated    bool
	warmJWT    string
	issued     map[string]map[string]bool // token -> JWTs given as valid answers
	calls      map[string]int             // introspection calls per token
	jwksFaulty int                        // JWKS requests answered while slow or down
}

// window is a time interval [from, to); a zero to means still open.
type window struct{ from, to time.Time }

func newFaultAS(t *testing.T, format string) *faultAS {
	t.Helper()
	as := &faultAS{format: format, issued: map[string]map[string]bool{}, calls: map[string]int{}}
	for i := range as.keys {
		raw, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		k, err := jwk.FromRaw(raw)
		if err != nil {
			t.Fatal(err)
		}
		_ = k.Set(jwk.KeyIDKey, fmt.Sprintf("fault-%d", i+1))
		_ = k.Set(jwk.AlgorithmKey, jwa.RS256)
		as.keys[i] = k
	}
	as.addr = freePort(t)
	as.url = "http://" + as.addr
	if err := as.up(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(as.close)
	return as
}

// up starts serving on the AS's fixed address.
func (as *faultAS) up() error {
	l, err := net.Listen("tcp", as.addr)
	if err != nil {
		return fmt.Errorf("fault AS: listening on %s: %v", as.addr, err)
	}
	srv := &http.Server{Handler: as.handler(), ConnState: as.conns.track}
	go func() { _ = srv.Serve(l) }()
	as.mu.Lock()
	defer as.mu.Unlock()
	as.srv = srv
	if as.down {
		as.downs[len(as.downs)-1].to = time.Now()
		as.down = false
	}
	return nil
}

// goDown closes the listener and every connection: the AS is gone and
// connections are refused until up.
func (as *faultAS) goDown() {
	as.mu.Lock()
	srv := as.srv
	as.srv = nil
	if !as.down {
		as.down = true
		as.downs = append(as.downs, window{from: time.Now()})
	}
	as.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

func (as *faultAS) close() {
	as.mu.Lock()
	srv := as.srv
	as.srv = nil
	as.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// downDuring reports whether the AS was down at some moment in [from, to],
// widened by slack for the scheduling between the AS and the gateway.
func (as *faultAS) downDuring(from, to time.Time, slack time.Duration) bool {
	as.mu.Lock()
	defer as.mu.Unlock()
	for _, w := range as.downs {
		end := w.to
		if end.IsZero() {
			end = time.Now()
		}
		if !from.After(end.Add(slack)) && !to.Before(w.from.Add(-slack)) {
			return true
		}
	}
	return false
}

func (as *faultAS) set(mode faultMode) {
	as.mu.Lock()
	as.mode = mode
	as.mu.Unlock()
}

func (as *faultAS) setJWKS(delay time.Duration, down bool) {
	as.mu.Lock()
	as.jwksDelay, as.jwksDown = delay, down
	as.mu.Unlock()
}

// rotate publishes the second key, as an AS does before signing with it.
func (as *faultAS) rotate() {
	as.mu.Lock()
	as.rotated = true
	as.mu.Unlock()
}

func (as *faultAS) callsFor(token string) int {
	as.mu.Lock()
	defer as.mu.Unlock()
	return as.calls[token]
}

// validFor reports whether jwt is an answer the AS gave as valid for token.
func (as *faultAS) validFor(token, jwt string) bool {
	as.mu.Lock()
	defer as.mu.Unlock()
	return as.issued[token][jwt]
}

func (as *faultAS) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/jwks", as.serveJWKS)
	mux.HandleFunc("/introspect", as.serveIntrospect)
	return mux
}

func (as *faultAS) serveJWKS(w http.ResponseWriter, r *http.Request) {
	as.mu.Lock()
	delay, down, rotated := as.jwksDelay, as.jwksDown, as.rotated
	if delay > 0 || down {
		as.jwksFaulty++
	}
	as.mu.Unlock()
	if !sleepCtx(r.Context(), delay) {
		return
	}
	if down {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	set := jwk.NewSet()
	for i, k := range as.keys {
		if i == 1 && !rotated {
			break
		}
		pub, _ := k.PublicKey()
		_ = set.AddKey(pub)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(set)
}

func (as *faultAS) serveIntrospect(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	token := r.PostForm.Get("token")
	user, pass, _ := r.BasicAuth()
	as.mu.Lock()
	as.calls[token]++
	mode, slowBy, warmJWT := as.mode, as.slowBy, as.warmJWT
	as.mu.Unlock()
	if user != "gateway" || pass != "s3cret" {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}

	switch mode {
	case modeSlow:
		if !sleepCtx(r.Context(), slowBy) {
			return
		}
	case modeReset:
		resetConn(w)
		return
	case modeHuge:
		w.Header().Set("Content-Type", as.mediaType())
		w.Header().Set("Content-Length", fmt.Sprint(10<<20))
		chunk := []byte(strings.Repeat("A", 64<<10))
		for i := 0; i < (10<<20)/len(chunk); i++ {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
		return
	case modeGarbage:
		junk := make([]byte, 512)
		_, _ = rand.Read(junk)
		w.Header().Set("Content-Type", as.mediaType())
		_, _ = w.Write(junk)
		return
	case modeWrongType:
		// A well-formed answer in a media type the format does not
		// promise: an AS error page or a misrouted reply. Not a decision.
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, as.build(token, resource, 0))
		return
	case modeTruncated:
		answerTruncated(w, as.mediaType(), as.build(token, resource, 0))
		return
	case modeOtherAudience:
		// A decision, but for another resource: the gateway must refuse
		// the token, so it is not recorded as valid.
		as.write(w, as.build(token, otherAudience, 0))
		return
	case modeOtherToken:
		// The AS vouches for this token with the JWT of another one: that
		// is the AS's answer for this token, and the only JWT the upstream
		// may see for it.
		as.record(token, warmJWT)
		as.write(w, as.wrap(token, warmJWT, resource))
		return
	}
	key := 0
	if strings.HasPrefix(token, rotatedPrefix) {
		key = 1
	}
	jwt := as.sign(token, resource, key)
	as.record(token, jwt)
	as.write(w, as.wrap(token, jwt, resource))
}

// build makes a well-formed answer for token, for the audience aud,
// without recording it as a valid decision: the faults use it for replies
// the gateway must not act on.
func (as *faultAS) build(token, aud string, key int) string {
	return as.wrap(token, as.sign(token, aud, key), aud)
}

// wrap puts jwt in the AS's reply format.
func (as *faultAS) wrap(token, jwt, aud string) string {
	if as.format == "jwt" {
		return jwt
	}
	body, _ := json.Marshal(map[string]any{
		"active": true, "sub": "user-" + token, "client_id": "agent", "aud": aud,
		"scope": "mcp:tools openid", "exp": time.Now().Add(time.Hour).Unix(),
		"phantom_token": jwt,
	})
	return string(body)
}

func (as *faultAS) record(token, jwt string) {
	as.mu.Lock()
	defer as.mu.Unlock()
	if as.issued[token] == nil {
		as.issued[token] = map[string]bool{}
	}
	as.issued[token][jwt] = true
}

func (as *faultAS) mediaType() string {
	if as.format == "jwt" {
		return "application/jwt"
	}
	return "application/json"
}

func (as *faultAS) write(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", as.mediaType())
	_, _ = io.WriteString(w, body)
}

// sign makes the access-token JWT the AS issues for token.
func (as *faultAS) sign(token, aud string, key int) string {
	claims, _ := json.Marshal(map[string]any{
		"iss": as.url, "sub": "user-" + token, "client_id": "agent", "aud": aud,
		"scope": "mcp:tools openid", "iat": time.Now().Unix(),
		"exp": time.Now().Add(time.Hour).Unix(), "jti": "jti-" + token + "-" + fmt.Sprint(time.Now().UnixNano()),
	})
	hdrs := jws.NewHeaders()
	_ = hdrs.Set(jws.TypeKey, "at+jwt")
	_ = hdrs.Set(jws.KeyIDKey, as.keys[key].KeyID())
	signed, err := jws.Sign(claims, jws.WithKey(jwa.RS256, as.keys[key], jws.WithProtectedHeaders(hdrs)))
	if err != nil {
		panic(err) // a fixture key that cannot sign is a broken test
	}
	return string(signed)
}

// resetConn aborts the connection with a TCP RST: SO_LINGER 0, then close.
func resetConn(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// answerTruncated answers 200 with a Content-Length larger than what it writes,
// then closes the connection mid-body.
func answerTruncated(w http.ResponseWriter, mediaType, body string) {
	conn, buf, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	writeTruncated(buf.Writer, mediaType, body)
}

func writeTruncated(bw *bufio.Writer, mediaType, body string) {
	fmt.Fprintf(bw, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s", mediaType, len(body)+64, body)
	_ = bw.Flush()
}

// sleepCtx waits d unless ctx ends first; it reports whether d elapsed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// tlsAS serves the AS over TLS with a certificate no one trusts: the
// gateway must refuse to talk to it.
func tlsAS(t *testing.T, as *faultAS) *httptest.Server {
	t.Helper()
	srv := httptest.NewTLSServer(as.handler())
	t.Cleanup(srv.Close)
	return srv
}

func (as *faultAS) isDown() bool {
	as.mu.Lock()
	defer as.mu.Unlock()
	return as.down
}
