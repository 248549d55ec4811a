package demoas

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/ory/fosite"
)

// handleAuthorize serves the authorization endpoint: the authorization code
// grant with PKCE when users are configured, else an error (RFC 8414 and MCP
// clients require the endpoint to exist).
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	if s.users == nil {
		writeError(w, http.StatusBadRequest, "unsupported_response_type", "this server issues tokens by client credentials only")
		return
	}
	s.authorize(w, r)
}

// grant is what an authorization request may be granted.
type grant struct {
	resource *Resource
	scopes   []string
}

// authorize serves the login and consent page (GET), and the user's answer
// (POST, to the same URL: the query still carries the authorization
// request). fosite validates the request both times.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	var answer url.Values // the login form; nil for GET
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			writeErrorPage(w, http.StatusBadRequest, "invalid_request", "The form could not be read.", "")
			return
		}
		answer = r.PostForm
	default:
		w.Header().Set("Allow", "GET, POST")
		writeErrorPage(w, http.StatusMethodNotAllowed, "invalid_request", "The authorization endpoint accepts GET and POST.", "")
		return
	}

	query := r.URL.Query()
	ctx := withRedirectURI(r.Context(), query.Get("redirect_uri"))
	ar, err := s.provider.NewAuthorizeRequest(ctx, s.oauthRequest(r, query))
	if err != nil {
		s.authorizeError(ctx, w, ar, err)
		return
	}
	g, err := s.checkAuthorizeRequest(ar, strings.Fields(query.Get("scope")))
	if err != nil {
		s.provider.WriteAuthorizeError(ctx, w, ar, err)
		return
	}

	page := newLoginPage(ar.GetClient(), g, query)
	if answer == nil {
		page.write(w, http.StatusOK)
		return
	}
	switch answer.Get("decision") {
	case "deny":
		s.provider.WriteAuthorizeError(ctx, w, ar, fosite.ErrAccessDenied.WithHint("The user denied the request."))
		return
	case "allow":
	default:
		page.Error = "Choose Allow or Deny."
		page.write(w, http.StatusBadRequest)
		return
	}
	username := answer.Get("username")
	if !s.users.check(username, answer.Get("password")) {
		page.Error = "Wrong username or password."
		page.Username = username
		page.write(w, http.StatusOK)
		return
	}

	// The code remembers the grant; the token endpoint restores it.
	ar.SetRequestedScopes(g.scopes)
	ar.SetRequestedAudience([]string{g.resource.URL})
	for _, sc := range g.scopes {
		ar.GrantScope(sc)
	}
	ar.GrantAudience(g.resource.URL)
	session := &fosite.DefaultSession{Subject: username, Username: username}
	resp, err := s.provider.NewAuthorizeResponse(ctx, ar, session)
	if err != nil {
		s.provider.WriteAuthorizeError(ctx, w, ar, err)
		return
	}
	s.provider.WriteAuthorizeResponse(ctx, w, ar, resp)
}

// oauthRequest returns the request fosite parses: r's query only, so that a
// POST carries the user's answer in its body but never OAuth parameters (what
// is granted is what the page showed). Requested scopes no resource accepts
// are dropped before fosite sees them, which would refuse them: narrowing is
// checkAuthorizeRequest's, silently (least privilege).
func (s *Server) oauthRequest(r *http.Request, query url.Values) *http.Request {
	params := url.Values{}
	for k, v := range query {
		params[k] = slices.Clone(v)
	}
	if params.Has("scope") {
		known := slices.DeleteFunc(strings.Fields(params.Get("scope")), func(sc string) bool {
			return !slices.Contains(s.store.loginClients.scopes, sc)
		})
		params.Set("scope", strings.Join(known, " "))
	}
	req := r.Clone(r.Context())
	req.Method = http.MethodGet
	req.Body = http.NoBody
	req.ContentLength = 0
	req.Header.Del("Content-Type")
	req.Form = params
	req.PostForm = url.Values{}
	req.MultipartForm = nil
	return req
}

// checkAuthorizeRequest applies the rules fosite does not know: PKCE with
// S256 before the user logs in (fosite checks it only when issuing the
// code), the RFC 8707 resource, and the scopes of that resource.
func (s *Server) checkAuthorizeRequest(ar fosite.AuthorizeRequester, requested []string) (grant, error) {
	form := ar.GetRequestForm()
	if form.Get("code_challenge") == "" {
		return grant{}, fosite.ErrInvalidRequest.WithHint("PKCE is required: send code_challenge and code_challenge_method=S256.")
	}
	if form.Get("code_challenge_method") != "S256" {
		return grant{}, fosite.ErrInvalidRequest.WithHint("code_challenge_method must be S256.")
	}

	var res *Resource
	switch rs := form["resource"]; {
	case len(rs) == 0 && len(s.resources) == 1:
		res = &s.resources[0]
	case len(rs) == 0:
		return grant{}, errInvalidTarget("Name the resource with the resource parameter (RFC 8707).")
	case len(rs) > 1:
		return grant{}, errInvalidTarget("Request one resource at a time.")
	default:
		if res = s.resources.find(rs[0]); res == nil {
			return grant{}, errInvalidTarget("The resource is unknown.")
		}
	}

	scopes := res.narrow(requested)
	if len(requested) > 0 && len(scopes) == 0 {
		return grant{}, fosite.ErrInvalidScope.WithHintf("The resource accepts none of the requested scopes; it accepts %q.", strings.Join(res.Scopes, " "))
	}
	return grant{resource: res, scopes: scopes}, nil
}

// authorizeError reports an invalid authorization request: to the client by
// a redirect when the redirect URI is known good, else (unknown client, bad
// redirect URI) to the user on a page, never redirecting to an unverified
// URI (RFC 6749 §4.1.2.1).
func (s *Server) authorizeError(ctx context.Context, w http.ResponseWriter, ar fosite.AuthorizeRequester, err error) {
	if ar != nil && ar.IsRedirectURIValid() {
		s.provider.WriteAuthorizeError(ctx, w, ar, err)
		return
	}
	e := fosite.ErrorToRFC6749Error(err)
	status := http.StatusBadRequest // also for invalid_client: no HTTP authentication applies
	if e.StatusCode() >= 500 {
		status = http.StatusInternalServerError
	}
	writeErrorPage(w, status, e.ErrorField, e.GetDescription(), e.Debug())
}
