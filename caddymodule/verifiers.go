package caddymodule

import (
	"context"
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"

	"github.com/phantomgate/caddy-phantom-token/introspect"
)

// verifiers holds the AS JWKS verifiers by JWKS URI, so that routes and
// config reloads naming the same JWKS share one warm key set. A shared
// verifier also outlives the config that created it while the next config
// uses it, so a load started under the old config (whose single flight a
// request under the new one may join) never finds it stopped. The URI is
// the whole key: every verifier uses the default JWKS client, so nothing
// else tells two apart.
var verifiers = caddy.NewUsagePool()

// pooledVerifier stops its verifier's background refresher when its last
// user leaves, and closes the connections of its tls_ca client.
type pooledVerifier struct {
	*introspect.JWKSVerifier
	stop   context.CancelFunc
	client *http.Client // nil: the verifier's own
}

// Destruct implements caddy.Destructor.
func (p pooledVerifier) Destruct() error {
	p.stop()
	if p.client != nil {
		p.client.CloseIdleConnections()
	}
	return nil
}

// loadVerifier takes this handler's share of the verifier for its JWKS URI.
// It does no network I/O.
func (h *Handler) loadVerifier() error {
	uri := h.ASJWKSURI
	// Handlers that trust another CA for the AS get another verifier.
	key := uri + "\x00" + h.TLSCA
	val, _, err := verifiers.LoadOrNew(key, func() (caddy.Destructor, error) {
		var client *http.Client
		if h.TLSCA != "" {
			var err error
			if client, err = introspect.NewJWKSCAHTTPClient(h.TLSCA); err != nil {
				return nil, fmt.Errorf("tls_ca: %v", err)
			}
		}
		// Not the config's context: the pool, not one config, decides
		// when the refresher stops.
		ctx, cancel := context.WithCancel(context.Background())
		v, err := introspect.NewJWKSVerifier(ctx, uri, client)
		if err != nil {
			cancel()
			return nil, err
		}
		return pooledVerifier{JWKSVerifier: v, stop: cancel, client: client}, nil
	})
	if err != nil {
		return err
	}
	h.verifier = val.(pooledVerifier).JWKSVerifier
	h.verifierKey = key
	return nil
}

// releaseVerifier gives back this handler's share, once.
func (h *Handler) releaseVerifier() error {
	if h.verifierKey == "" {
		return nil
	}
	_, err := verifiers.Delete(h.verifierKey)
	h.verifierKey = ""
	return err
}
