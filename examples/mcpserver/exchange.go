package mcpserver

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// APIConfig says how the my_data tool reaches the API: it exchanges the JWT
// of the call for a token for the API at the authorization server (RFC
// 8693), then calls the API with it.
type APIConfig struct {
	// URL is what the tool GETs: the API endpoint as clients address it,
	// through the gateway (e.g. http://127.0.0.1:8080/api/me). Required.
	URL string
	// Resource is the API's resource indicator (RFC 8707), asked for in the
	// exchange. Required.
	Resource string
	// TokenURL is the authorization server's token endpoint. Required.
	TokenURL string
	// ClientID and ClientSecret are this server's own client at the
	// authorization server (client_secret_basic). Required.
	ClientID, ClientSecret string
	// Scope, if set, is the scope asked for in the exchange; otherwise the
	// authorization server decides.
	Scope string
	// HTTPClient makes the exchange and the API call; default a client with
	// a 10s timeout.
	HTTPClient *http.Client
}

func (c APIConfig) validate() error {
	for name, v := range map[string]string{"URL": c.URL, "Resource": c.Resource, "TokenURL": c.TokenURL} {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("mcpserver: API.%s %q is not an absolute http(s) URL", name, v)
		}
	}
	if c.ClientID == "" || c.ClientSecret == "" {
		return errors.New("mcpserver: API.ClientID and API.ClientSecret are required")
	}
	return nil
}

// The RFC 8693 names the exchange uses.
const (
	grantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeJWT       = "urn:ietf:params:oauth:token-type:jwt"
)

const (
	// exchangeMargin is how long before its expiry a cached exchanged token
	// is no longer used: a call that starts must not carry a token that
	// expires on its way to the API.
	exchangeMargin = 30 * time.Second
	// exchangeCacheMax bounds the cache; expired entries go first.
	exchangeCacheMax = 10_000
	// maxTokenResponse bounds the token endpoint's answer.
	maxTokenResponse = 64 << 10
)

// exchanger exchanges subject JWTs for API tokens and caches the result per
// subject token until shortly before it expires. The incoming JWT itself is
// never cached or sent anywhere but the token endpoint.
type exchanger struct {
	cfg    APIConfig
	client *http.Client

	mu    sync.Mutex
	cache map[[sha256.Size]byte]exchanged
}

// exchanged is one cached exchange result.
type exchanged struct {
	token   string
	expires time.Time
}

func newExchanger(cfg APIConfig) *exchanger {
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	return &exchanger{cfg: cfg, client: client, cache: map[[sha256.Size]byte]exchanged{}}
}

// token returns a token for the API on behalf of subject (the JWT of the
// call, valid until subjectExp).
func (e *exchanger) token(ctx context.Context, subject string, subjectExp time.Time) (string, error) {
	key := sha256.Sum256([]byte(subject))
	now := time.Now()
	e.mu.Lock()
	c, ok := e.cache[key]
	e.mu.Unlock()
	if ok && c.expires.Sub(now) > exchangeMargin {
		return c.token, nil
	}

	tok, lifetime, err := e.exchange(ctx, subject)
	if err != nil {
		return "", err
	}
	expires := now.Add(lifetime)
	// Never past the subject token: the exchanged one stands for it.
	if !subjectExp.IsZero() && subjectExp.Before(expires) {
		expires = subjectExp
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.cache) >= exchangeCacheMax {
		for k, v := range e.cache {
			if !v.expires.After(now) {
				delete(e.cache, k)
			}
		}
		if len(e.cache) >= exchangeCacheMax {
			clear(e.cache)
		}
	}
	e.cache[key] = exchanged{token: tok, expires: expires}
	return tok, nil
}

// exchange asks the token endpoint for a token for the API.
func (e *exchanger) exchange(ctx context.Context, subject string) (string, time.Duration, error) {
	form := url.Values{
		"grant_type":         {grantTokenExchange},
		"subject_token":      {subject},
		"subject_token_type": {tokenTypeJWT},
		"resource":           {e.cfg.Resource},
	}
	if e.cfg.Scope != "" {
		form.Set("scope", e.cfg.Scope)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.cfg.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, fmt.Errorf("token exchange: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// RFC 6749 §2.3.1: form-encode the credentials before Basic.
	req.SetBasicAuth(url.QueryEscape(e.cfg.ClientID), url.QueryEscape(e.cfg.ClientSecret))
	resp, err := e.client.Do(req)
	if err != nil {
		return "", 0, fmt.Errorf("token exchange: %w", err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken     string `json:"access_token"`
		IssuedTokenType string `json:"issued_token_type"`
		ExpiresIn       int64  `json:"expires_in"`
		Error           string `json:"error"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxTokenResponse)).Decode(&body); err != nil {
		return "", 0, fmt.Errorf("token exchange: status %d, unreadable answer", resp.StatusCode)
	}
	if resp.StatusCode != http.StatusOK {
		// The error code is the AS's (RFC 6749 §5.2); its description may
		// quote input, so it stays out.
		return "", 0, fmt.Errorf("token exchange refused: status %d, error %q", resp.StatusCode, body.Error)
	}
	if body.AccessToken == "" || body.ExpiresIn <= 0 {
		return "", 0, errors.New("token exchange: the answer has no access_token or expires_in")
	}
	return body.AccessToken, time.Duration(body.ExpiresIn) * time.Second, nil
}
