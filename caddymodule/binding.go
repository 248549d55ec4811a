package caddymodule

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
)

// bindingReason is a value of the "reason" label of
// caddy_phantom_token_sender_constraint_rejections_total: why a request was
// refused for proof of possession. The label set is fixed.
type bindingReason uint8

const (
	reasonDPoPInvalid     bindingReason = iota // the DPoP proof is missing, malformed or wrong
	reasonDPoPReplay                           // the DPoP proof's jti was seen before
	reasonBindingMismatch                      // the token's binding does not match the request
	numBindingReasons
)

var bindingReasonLabels = [numBindingReasons]string{
	reasonDPoPInvalid:     "dpop_invalid",
	reasonDPoPReplay:      "dpop_replay",
	reasonBindingMismatch: "binding_mismatch",
}

// bindingRejections is caddy_phantom_token_sender_constraint_rejections_total.
var bindingRejections = prometheus.NewCounterVec(prometheus.CounterOpts{
	Namespace: "caddy",
	Subsystem: "phantom_token",
	Name:      "sender_constraint_rejections_total",
	Help:      "Requests refused for proof of possession (DPoP, certificate-bound tokens), by reason.",
}, []string{"reason"})

// bindingCounters are the counters by reason, looked up once.
var bindingCounters = func() (c [numBindingReasons]prometheus.Counter) {
	for r := range numBindingReasons {
		c[r] = bindingRejections.WithLabelValues(bindingReasonLabels[r])
	}
	return c
}()

func countBindingRejection(r bindingReason) { bindingCounters[r].Inc() }

var errBindingMismatch = errors.New("the access token is bound to another key or certificate")

// checkBinding enforces the token's binding on this request, on every
// request, cache hits included: the binding is stored with the entry and a
// proof is never cached. cred is how the token was presented, and
// thumbprint the verified DPoP proof's key thumbprint (DPoP only).
//
//   - Presented as DPoP: the token must be bound to that key (cnf.jkt).
//   - Presented as Bearer: the token must not be DPoP-bound (cnf.jkt or
//     token_type DPoP), or the binding would be for nothing (RFC 9449 §7.2).
//   - Certificate-bound (cnf.x5t#S256): only with mtls_bound, and only on a
//     TLS connection whose client certificate hashes to it (RFC 8705 §3).
//     Without mtls_bound the gateway cannot enforce it, so it refuses.
func (h *Handler) checkBinding(r *http.Request, e *entry, cred credentials, thumbprint string) bool {
	x := e.extras
	if x == nil {
		return cred != dpopToken
	}
	if cred == dpopToken {
		if x.jkt == "" || subtle.ConstantTimeCompare([]byte(x.jkt), []byte(thumbprint)) != 1 {
			return false
		}
	} else if x.jkt != "" || x.dpopType {
		return false
	}
	if x.x5t != "" {
		if !h.MTLSBound || r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			return false
		}
		sum := sha256.Sum256(r.TLS.PeerCertificates[0].Raw)
		var enc [43]byte // base64url of 32 bytes, unpadded
		base64.RawURLEncoding.Encode(enc[:], sum[:])
		if subtle.ConstantTimeCompare(enc[:], []byte(x.x5t)) != 1 {
			return false
		}
	}
	return true
}
