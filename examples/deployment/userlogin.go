package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/net/html"

	"github.com/phantomgate/caddy-phantom-token/examples/demoas"
)

// walkthroughRedirect is the redirect URI of the walkthrough's client. It is
// never visited: the walkthrough reads the code from the redirect itself.
const walkthroughRedirect = "http://127.0.0.1/callback"

// userLogin is what the scripted login of one user produced.
type userLogin struct {
	clientID string
	page     string // the login page's text
	token    string // the opaque access token for the MCP server
}

// loginUser does what an MCP client and its user do, with Go's HTTP client
// in place of the browser: register a client (RFC 7591), open the
// authorization endpoint with PKCE (S256) and the MCP URL as resource, log
// in and consent on the page, take the code from the redirect and redeem it.
func (s *stack) loginUser(ctx context.Context, c *http.Client, u demoUser) (userLogin, error) {
	var out userLogin
	var reg struct {
		ClientID string `json:"client_id"`
	}
	regBody, _ := json.Marshal(map[string]any{
		"client_name":                "deployment walkthrough",
		"redirect_uris":              []string{walkthroughRedirect},
		"grant_types":                []string{"authorization_code"},
		"response_types":             []string{"code"},
		"token_endpoint_auth_method": "none",
	})
	if err := postJSON(ctx, c, s.as.URL+demoas.RegistrationPath, regBody, http.StatusCreated, &reg); err != nil || reg.ClientID == "" {
		return out, fmt.Errorf("dynamic registration: %v", err)
	}
	out.clientID = reg.ClientID

	verifier, state := randomString(), randomString()
	sum := sha256.Sum256([]byte(verifier))
	authURL := s.as.URL + demoas.AuthorizationPath + "?" + url.Values{
		"response_type":         {"code"},
		"client_id":             {reg.ClientID},
		"redirect_uri":          {walkthroughRedirect},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
		"state":                 {state},
		"scope":                 {mcpScope},
		"resource":              {s.mcpURL},
	}.Encode()
	page, err := get(ctx, c, authURL)
	if err != nil {
		return out, fmt.Errorf("login page: %v", err)
	}
	form, err := parseForm(page, authURL)
	if err != nil {
		return out, fmt.Errorf("login page: %v", err)
	}
	out.page = pageText(page)
	form.values.Set("username", u.name)
	form.values.Set("password", u.password)
	form.values.Set("decision", "allow")
	code, err := submitConsent(ctx, c, form, state)
	if err != nil {
		return out, err
	}

	var tok struct {
		AccessToken string `json:"access_token"`
	}
	tokenForm := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"code_verifier": {verifier},
		"redirect_uri":  {walkthroughRedirect},
		"client_id":     {reg.ClientID},
		"resource":      {s.mcpURL},
	}
	if err := postForm(ctx, c, s.as.URL+demoas.TokenPath, tokenForm, &tok); err != nil || tok.AccessToken == "" {
		return out, fmt.Errorf("redeeming the code: %v", err)
	}
	out.token = tok.AccessToken
	return out, nil
}

// loginForm is the login page's form.
type loginForm struct {
	action string
	values url.Values
}

// parseForm finds the page's form, its action (resolved against pageURL)
// and its hidden inputs.
func parseForm(page []byte, pageURL string) (loginForm, error) {
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		return loginForm{}, err
	}
	f := loginForm{values: url.Values{}}
	found := false
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "form":
				if !found {
					found = true
					f.action = attr(n, "action")
				}
			case "input":
				if strings.EqualFold(attr(n, "type"), "hidden") {
					f.values.Add(attr(n, "name"), attr(n, "value"))
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if !found {
		return f, errors.New("no form on the page")
	}
	base, _ := url.Parse(pageURL)
	action, err := base.Parse(f.action)
	if err != nil {
		return f, fmt.Errorf("form action %q: %v", f.action, err)
	}
	f.action = action.String()
	return f, nil
}

func attr(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

// pageText returns the text of an HTML page, whitespace collapsed.
func pageText(page []byte) string {
	z := html.NewTokenizer(bytes.NewReader(page))
	var b strings.Builder
	for {
		switch z.Next() {
		case html.ErrorToken:
			return strings.Join(strings.Fields(b.String()), " ")
		case html.TextToken:
			b.Write(z.Text())
			b.WriteByte(' ')
		}
	}
}

// submitConsent posts the form and returns the code of the redirect to the
// client, after checking its state.
func submitConsent(ctx context.Context, c *http.Client, f loginForm, state string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.action, strings.NewReader(f.values.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	if err != nil {
		return "", fmt.Errorf("consent: %v", err)
	}
	defer resp.Body.Close()
	loc, err := resp.Location()
	if resp.StatusCode/100 != 3 || err != nil || !strings.HasPrefix(loc.String(), walkthroughRedirect) {
		return "", fmt.Errorf("consent: status %d, want a redirect to the client", resp.StatusCode)
	}
	q := loc.Query()
	if q.Get("state") != state || q.Get("code") == "" {
		return "", fmt.Errorf("consent: redirect with error %q and state matching %v", q.Get("error"), q.Get("state") == state)
	}
	return q.Get("code"), nil
}

func get(ctx context.Context, c *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	return body, err
}

func postJSON(ctx context.Context, c *http.Client, u string, body []byte, want int, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	return doJSON(c, req, want, into)
}

func postForm(ctx context.Context, c *http.Client, u string, form url.Values, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return doJSON(c, req, http.StatusOK, into)
}

// doJSON sends req and decodes a JSON answer with status want; another
// status is an error naming the OAuth error code, if any.
func doJSON(c *http.Client, req *http.Request, want int, into any) error {
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != want {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		return fmt.Errorf("status %d, error %q", resp.StatusCode, e.Error)
	}
	return json.Unmarshal(body, into)
}

// randomString returns 32 random bytes, base64url-encoded: a PKCE verifier
// or a state value.
func randomString() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
