package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/phantomgate/caddy-phantom-token/examples/demoas"
	"github.com/phantomgate/caddy-phantom-token/examples/echo"
)

// minCalls is the number of authorized calls the demo makes at least.
const minCalls = 5

// demoResult is what the demo found out.
type demoResult struct {
	token      string   // the agent's opaque token
	successes  int      // authorized calls answered 200 by the upstream
	failures   []string // expectations that did not hold
	introCalls int64    // introspection requests the AS served
}

func (r *demoResult) fail(format string, args ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}

// demo gets a token for the agent, calls the gateway with and without it,
// and reports what the upstream and the AS saw. It returns an error only when
// it cannot run at all; unmet expectations are in the result.
func (s *stack) demo(ctx context.Context, out io.Writer, calls int) (*demoResult, error) {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}
	res := &demoResult{}

	fmt.Fprintf(out, "phantom token quickstart\n\n")
	fmt.Fprintf(out, "  authorization server  %-24s  demo AS (ory/fosite), clients %q and %q\n", s.as.URL, gatewayClientID, agentClientID)
	fmt.Fprintf(out, "  upstream              %-24s  echo server, records what it receives\n", "http://"+s.upstreamAddr)
	fmt.Fprintf(out, "  gateway               %-24s  Caddy + phantom_token, %s\n\n", s.gatewayURL, s.caddyfile)

	tok, err := s.agentToken(ctx, client)
	if err != nil {
		return nil, err
	}
	res.token = tok
	fmt.Fprintf(out, "the agent got an opaque access token (client credentials, scope %s)\n", agentScope)
	fmt.Fprintf(out, "  %d characters, %s\n\n", len(tok), fingerprint(tok))

	fmt.Fprintf(out, "calls through the gateway\n")
	s.unauthorizedCall(ctx, client, out, res)
	if calls < minCalls {
		calls = minCalls
	}
	for i := range calls {
		method, path := http.MethodGet, "/"
		if i%2 == 1 {
			method, path = http.MethodPost, "/mcp"
		}
		s.authorizedCall(ctx, client, out, res, method, path, tok)
	}
	if res.successes < minCalls {
		res.fail("%d authorized calls succeeded, want at least %d", res.successes, minCalls)
	}

	fmt.Fprintf(out, "\nwhat the upstream received (last request)\n")
	s.inspectUpstream(ctx, client, out, res, tok)

	res.introCalls = s.as.IntrospectionCalls()
	fmt.Fprintf(out, "\nintrospection calls served by the AS: %d\n", res.introCalls)
	if res.introCalls == 1 {
		fmt.Fprintf(out, "  %d authorized calls, 1 introspection: the other %d were answered from the gateway cache\n",
			res.successes, max(res.successes-1, 0))
	} else {
		res.fail("the AS served %d introspection calls, want exactly 1", res.introCalls)
	}

	if len(res.failures) == 0 {
		fmt.Fprintf(out, "\nall checks passed\n")
	} else {
		fmt.Fprintf(out, "\nFAILED\n")
		for _, f := range res.failures {
			fmt.Fprintf(out, "  - %s\n", f)
		}
	}
	return res, nil
}

// agentToken gets an access token for the agent by client credentials.
func (s *stack) agentToken(ctx context.Context, client *http.Client) (string, error) {
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {agentScope}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.as.URL+demoas.TokenPath, strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(agentClientID, s.agentSecret)
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("token request: %w", err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("token request: status %d", resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil || body.AccessToken == "" {
		return "", fmt.Errorf("token request: no access_token in the response (%v)", err)
	}
	return body.AccessToken, nil
}

// unauthorizedCall calls the gateway without a token and expects a 401
// Bearer challenge, without the upstream being reached.
func (s *stack) unauthorizedCall(ctx context.Context, client *http.Client, out io.Writer, res *demoResult) {
	before := s.upstream.Count()
	resp, err := s.call(ctx, client, http.MethodGet, "/", "")
	if err != nil {
		fmt.Fprintf(out, "  GET  /     no token          error: %v\n", err)
		res.fail("call without a token: %v", err)
		return
	}
	challenge := resp.Header.Get("WWW-Authenticate")
	fmt.Fprintf(out, "  GET  /     no token          %d  WWW-Authenticate: %s\n", resp.StatusCode, challenge)
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(challenge, "Bearer") {
		res.fail("call without a token: status %d, WWW-Authenticate %q; want 401 with a Bearer challenge", resp.StatusCode, challenge)
	}
	if s.upstream.Count() != before {
		res.fail("call without a token reached the upstream")
	}
}

// authorizedCall calls the gateway with the opaque token and checks, from the
// echo's answer, that the upstream saw a JWT.
func (s *stack) authorizedCall(ctx context.Context, client *http.Client, out io.Writer, res *demoResult, method, path, tok string) {
	label := fmt.Sprintf("  %-4s %-5s Bearer <opaque>   ", method, path)
	resp, err := s.call(ctx, client, method, path, tok)
	if err != nil {
		fmt.Fprintf(out, "%serror: %v\n", label, err)
		res.fail("%s %s: %v", method, path, err)
		return
	}
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(out, "%s%d\n", label, resp.StatusCode)
		res.fail("%s %s: status %d, want 200", method, path, resp.StatusCode)
		return
	}
	var seen echo.Response
	if err := json.Unmarshal(resp.body, &seen); err != nil {
		fmt.Fprintf(out, "%s%d  (not an echo response)\n", label, resp.StatusCode)
		res.fail("%s %s: the answer is not from the echo upstream", method, path)
		return
	}
	switch {
	case seen.SawOpaqueToken:
		fmt.Fprintf(out, "%s%d  upstream saw an opaque token\n", label, resp.StatusCode)
		res.fail("%s %s: the upstream saw an opaque token", method, path)
	case seen.JWTClaims == nil:
		fmt.Fprintf(out, "%s%d  upstream saw no JWT\n", label, resp.StatusCode)
		res.fail("%s %s: the upstream saw no JWT", method, path)
	default:
		fmt.Fprintf(out, "%s%d  upstream saw Bearer <JWT>\n", label, resp.StatusCode)
		res.successes++
	}
}

// inspectUpstream checks the last request the upstream received: a verified
// JWT in Authorization, and the opaque token nowhere.
func (s *stack) inspectUpstream(ctx context.Context, client *http.Client, out io.Writer, res *demoResult, tok string) {
	last, ok := s.upstream.Last()
	if !ok {
		fmt.Fprintf(out, "  nothing: the upstream received no request\n")
		res.fail("the upstream received no request")
		return
	}

	leaked := strings.Contains(last.URL, tok)
	for _, vs := range last.Header {
		for _, v := range vs {
			leaked = leaked || strings.Contains(v, tok)
		}
	}
	if leaked {
		fmt.Fprintf(out, "  opaque token  PRESENT in the upstream request\n")
		res.fail("the opaque token reached the upstream")
	} else {
		fmt.Fprintf(out, "  opaque token  not in any header or the URL: the upstream never saw it\n")
	}

	scheme, cred, _ := strings.Cut(last.Header.Get("Authorization"), " ")
	claims, isJWT := echo.DecodeClaims(cred)
	if !strings.EqualFold(scheme, "bearer") || !isJWT {
		fmt.Fprintf(out, "  Authorization not a Bearer JWT\n")
		res.fail("the upstream's Authorization header is not a Bearer JWT")
		return
	}
	fmt.Fprintf(out, "  Authorization Bearer <JWT>, %s\n", describeJWT(cred))

	jwksURI := s.as.URL + demoas.JWKSPath
	if err := verifyJWT(ctx, client, cred, jwksURI, s.as.Issuer); err != nil {
		fmt.Fprintf(out, "  signature     NOT verified: %v\n", err)
		res.fail("the upstream's JWT does not verify: %v", err)
	} else {
		fmt.Fprintf(out, "  signature     verified with the AS JWKS (%s), issuer and expiry checked\n", jwksURI)
	}

	pretty, err := json.MarshalIndent(claims, "    ", "  ")
	if err != nil {
		pretty = []byte(fmt.Sprint(claims))
	}
	fmt.Fprintf(out, "  JWT claims\n    %s\n", pretty)
}

// describeJWT returns the JOSE header facts worth showing.
func describeJWT(token string) string {
	msg, err := jws.Parse([]byte(token))
	if err != nil || len(msg.Signatures()) == 0 {
		return "unparseable JOSE header"
	}
	h := msg.Signatures()[0].ProtectedHeaders()
	return fmt.Sprintf("alg %s, typ %s, kid %s", h.Algorithm(), h.Type(), h.KeyID())
}

// verifyJWT verifies token as an upstream would: signature against the AS
// JWKS, issuer, and time claims.
func verifyJWT(ctx context.Context, client *http.Client, token, jwksURI, issuer string) error {
	set, err := jwk.Fetch(ctx, jwksURI, jwk.WithHTTPClient(client))
	if err != nil {
		return fmt.Errorf("fetch JWKS: %w", err)
	}
	_, err = jwt.Parse([]byte(token), jwt.WithKeySet(set), jwt.WithValidate(true), jwt.WithIssuer(issuer))
	return err
}

// gatewayResponse is a response from the gateway with its body read.
type gatewayResponse struct {
	*http.Response
	body []byte
}

// call sends one request to the gateway; tok == "" sends no Authorization.
func (s *stack) call(ctx context.Context, client *http.Client, method, path, tok string) (*gatewayResponse, error) {
	var body io.Reader
	if method == http.MethodPost {
		body = bytes.NewReader([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	}
	req, err := http.NewRequestWithContext(ctx, method, s.gatewayURL+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	return &gatewayResponse{Response: resp, body: b}, nil
}

// fingerprint returns a short SHA-256 fingerprint, to refer to a token
// without showing it.
func fingerprint(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return "sha256:" + hex.EncodeToString(sum[:4])
}
