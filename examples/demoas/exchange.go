package demoas

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
)

// Exchange is an RFC 8693 token exchange a client may perform: trade a token
// of this server whose audience contains From for a token for To.
type Exchange struct {
	// Client is the client_id allowed to exchange (e.g. the MCP server's
	// own client; a confidential client from Config.Clients).
	Client string
	// From is a resource the subject token's "aud" must contain.
	From string
	// To is the resource the issued token is for; it must be one of
	// Config.Resources.
	To string
	// Scopes maps a scope of the subject token to the scopes of To it may
	// become; the issued token gets (the scopes requested, or all if none
	// requested) ∩ (the union of Scopes[s] for s in the subject token's
	// scopes).
	Scopes map[string][]string
}

// RFC 8693 identifiers.
const (
	grantTypeTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeJWT           = "urn:ietf:params:oauth:token-type:jwt"
	tokenTypeAccessToken   = "urn:ietf:params:oauth:token-type:access_token"
)

// actorKey is the session's Extra key holding the exchanging client's ID,
// introspected as RFC 8693 §4.1 "act": {"sub": ...}.
const actorKey = "act_sub"

// subjectLeeway is the clock skew allowed on the subject token's iat and
// nbf. Its exp gets none: the issued token must not outlive it.
const subjectLeeway = 5 * time.Second

// newExchanges validates the configured exchanges against the resources and
// returns a deep copy, so the caller's maps are never shared.
func newExchanges(exs []Exchange, rs resources) ([]Exchange, error) {
	out := make([]Exchange, 0, len(exs))
	for _, ex := range exs {
		if err := checkExchange(ex, rs); err != nil {
			return nil, err
		}
		scopes := make(map[string][]string, len(ex.Scopes))
		for from, to := range ex.Scopes {
			scopes[from] = slices.Clone(to)
		}
		ex.Scopes = scopes
		out = append(out, ex)
	}
	return out, nil
}

// checkExchange validates an exchange against the resources.
func checkExchange(ex Exchange, rs resources) error {
	if ex.Client == "" {
		return errors.New("demoas: an exchange has an empty Client")
	}
	if err := checkResource(ex.From); err != nil {
		return fmt.Errorf("demoas: exchange for %q: From: %w", ex.Client, err)
	}
	to := rs.find(ex.To)
	if to == nil {
		return fmt.Errorf("demoas: exchange for %q: To %q is not one of Resources", ex.Client, ex.To)
	}
	for from, scopes := range ex.Scopes {
		for _, sc := range scopes {
			if !slices.Contains(to.Scopes, sc) {
				return fmt.Errorf("demoas: exchange for %q: scope %q (from %q) is not a scope of %s", ex.Client, sc, from, ex.To)
			}
		}
	}
	return nil
}

// exchangeHandler is a fosite token endpoint handler for RFC 8693 token
// exchange (fosite v0.47 has none). The issued token is an ordinary opaque
// access token, so introspection and revocation handle it as any other.
type exchangeHandler struct {
	srv   *Server
	issue *oauth2.HandleHelper
}

// CanHandleTokenEndpointRequest implements fosite.TokenEndpointHandler.
func (h *exchangeHandler) CanHandleTokenEndpointRequest(_ context.Context, ar fosite.AccessRequester) bool {
	return ar.GetGrantTypes().ExactOne(grantTypeTokenExchange)
}

// CanSkipClientAuth implements fosite.TokenEndpointHandler: only
// authenticated (confidential) clients exchange.
func (h *exchangeHandler) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool {
	return false
}

// HandleTokenEndpointRequest implements fosite.TokenEndpointHandler: it
// checks the exchange and prepares the token's subject, actor, audience,
// scopes and lifetime.
func (h *exchangeHandler) HandleTokenEndpointRequest(ctx context.Context, ar fosite.AccessRequester) error {
	if !h.CanHandleTokenEndpointRequest(ctx, ar) {
		return fosite.ErrUnknownRequest
	}
	s := h.srv
	clientID := ar.GetClient().GetID()
	var mine []Exchange
	for _, ex := range s.exchanges {
		if ex.Client == clientID {
			mine = append(mine, ex)
		}
	}
	if len(mine) == 0 {
		return fosite.ErrUnauthorizedClient.WithHint("This client may not exchange tokens.")
	}

	form := ar.GetRequestForm()
	if form.Get("actor_token") != "" || form.Get("actor_token_type") != "" {
		return fosite.ErrInvalidRequest.WithHint("actor_token is not supported; the authenticated client is the actor.")
	}
	if rt := form.Get("requested_token_type"); rt != "" && rt != tokenTypeAccessToken {
		return fosite.ErrInvalidRequest.WithHintf("requested_token_type must be %s.", tokenTypeAccessToken)
	}
	to, err := s.exchangeTarget(mine, form["resource"], ar.GetRequestedAudience())
	if err != nil {
		return err
	}
	subj, err := s.subjectToken(ctx, form.Get("subject_token"), form.Get("subject_token_type"))
	if err != nil {
		return err
	}

	var allowed []string
	matched := false
	for _, ex := range mine {
		if ex.To != to.URL || !slices.Contains(subj.aud, ex.From) {
			continue
		}
		matched = true
		for _, sc := range subj.scopes {
			allowed = append(allowed, ex.Scopes[sc]...)
		}
	}
	if !matched {
		return fosite.ErrInvalidGrant.WithHint("The subject token's audience is not a resource this client may exchange tokens of.")
	}
	scopes := slices.DeleteFunc(to.narrow(ar.GetRequestedScopes()), func(sc string) bool {
		return !slices.Contains(allowed, sc)
	})
	if len(scopes) == 0 {
		return fosite.ErrInvalidScope.WithHint("No requested scope may be derived from the subject token's scopes.")
	}

	session, ok := ar.GetSession().(*fosite.DefaultSession)
	if !ok {
		return fosite.ErrServerError.WithDebug("unexpected session type")
	}
	session.Subject = subj.sub
	session.Username = ""
	if session.Extra == nil {
		session.Extra = map[string]any{}
	}
	session.Extra[actorKey] = clientID
	exp := time.Now().UTC().Add(s.lifetime)
	if subj.exp.Before(exp) {
		exp = subj.exp
	}
	session.SetExpiresAt(fosite.AccessToken, exp)
	for _, sc := range scopes {
		ar.GrantScope(sc)
	}
	ar.GrantAudience(to.URL)
	return nil
}

// PopulateTokenEndpointResponse implements fosite.TokenEndpointHandler.
func (h *exchangeHandler) PopulateTokenEndpointResponse(ctx context.Context, ar fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !h.CanHandleTokenEndpointRequest(ctx, ar) {
		return fosite.ErrUnknownRequest
	}
	if err := h.issue.IssueAccessToken(ctx, h.srv.lifetime, ar, resp); err != nil {
		return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	// RFC 8693 §2.2.1: token_type is "Bearer" for an access token ("N_A"
	// is for tokens that are not access tokens).
	resp.SetTokenType("Bearer")
	resp.SetExtra("issued_token_type", tokenTypeAccessToken)
	return nil
}

// exchangeTarget returns the resource the issued token is for: the one the
// "resource" and "audience" parameters name, or, when they name none and the
// client may exchange for one resource only, that one.
func (s *Server) exchangeTarget(mine []Exchange, resourceParams, audiences []string) (*Resource, error) {
	var names []string
	for _, n := range append(slices.Clone(resourceParams), audiences...) {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		for _, ex := range mine {
			if !slices.Contains(names, ex.To) {
				names = append(names, ex.To)
			}
		}
		if len(names) != 1 {
			return nil, errInvalidTarget("Name the resource the token is for with the resource or audience parameter.")
		}
	}
	if len(names) > 1 {
		return nil, errInvalidTarget("Request a token for one resource at a time.")
	}
	if !slices.ContainsFunc(mine, func(ex Exchange) bool { return ex.To == names[0] }) {
		return nil, errInvalidTarget("This client may not exchange tokens for this resource.")
	}
	return s.resources.find(names[0]), nil
}

// subject is what the exchange uses of the subject token.
type subject struct {
	sub    string
	scopes []string
	aud    []string
	exp    time.Time
}

// subjectToken verifies the subject token: a JWT this server signed (the
// introspection JWT a gateway forwarded), or, typed as an access token, an
// opaque access token of this server. Errors never echo the token.
func (s *Server) subjectToken(ctx context.Context, token, typ string) (subject, error) {
	switch {
	case token == "":
		return subject{}, fosite.ErrInvalidRequest.WithHint("subject_token is missing.")
	case typ == "":
		return subject{}, fosite.ErrInvalidRequest.WithHint("subject_token_type is missing.")
	case typ != tokenTypeJWT && typ != tokenTypeAccessToken:
		return subject{}, fosite.ErrInvalidRequest.WithHintf("subject_token_type must be %s or %s.", tokenTypeJWT, tokenTypeAccessToken)
	}
	if typ == tokenTypeAccessToken && strings.Count(token, ".") != 2 {
		at, active := s.lookup(ctx, token)
		if !active {
			return subject{}, fosite.ErrInvalidGrant.WithHint("The subject token is not an active access token of this server.")
		}
		return subject{sub: at.Subject, scopes: strings.Fields(at.Scope), aud: at.Audience, exp: at.ExpiresAt}, nil
	}
	return s.subjectJWT(token)
}

// subjectJWT verifies a JWT subject token: RS256 with this server's key,
// issued by this server, not expired.
func (s *Server) subjectJWT(token string) (subject, error) {
	msg, err := jws.Parse([]byte(token), jws.WithCompact())
	if err != nil || len(msg.Signatures()) != 1 {
		return subject{}, fosite.ErrInvalidRequest.WithHint("subject_token is not a compact JWT.")
	}
	if alg := msg.Signatures()[0].ProtectedHeaders().Algorithm(); alg != jwa.RS256 {
		return subject{}, fosite.ErrInvalidGrant.WithHint("The subject token is not signed with RS256.")
	}
	pub, err := s.signer.private.PublicKey()
	if err != nil {
		return subject{}, fosite.ErrServerError.WithDebug(err.Error())
	}
	t, err := jwt.Parse([]byte(token),
		jwt.WithKey(jwa.RS256, pub),
		jwt.WithValidate(true),
		jwt.WithIssuer(s.Issuer),
		jwt.WithAcceptableSkew(subjectLeeway),
		jwt.WithRequiredClaim(jwt.ExpirationKey),
		jwt.WithRequiredClaim(jwt.SubjectKey),
	)
	if err != nil {
		return subject{}, fosite.ErrInvalidGrant.WithHint("The subject token's signature, issuer or lifetime is not valid.").WithDebug(err.Error())
	}
	if !time.Now().Before(t.Expiration()) {
		return subject{}, fosite.ErrInvalidGrant.WithHint("The subject token has expired.")
	}
	return subject{sub: t.Subject(), scopes: scopeClaim(t), aud: t.Audience(), exp: t.Expiration()}, nil
}

// scopeClaim returns the "scope" claim: a space-separated string (RFC 9068),
// or a list.
func scopeClaim(t jwt.Token) []string {
	v, ok := t.Get("scope")
	if !ok {
		return nil
	}
	switch v := v.(type) {
	case string:
		return strings.Fields(v)
	case []any:
		var out []string
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
