package caddymodule

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/phantomgate/caddy-phantom-token/cache"
	"github.com/phantomgate/caddy-phantom-token/cache/redisstore"
)

func init() {
	caddy.RegisterModule(PurgeAPI{})
}

// PurgeAPI is the admin API module admin.api.phantom_token: POST
// /phantom_token/purge revokes cached introspection results now, on this
// node and, with a shared Redis cache, on every node of the fleet
// (docs/fleet.md). It lives on Caddy's admin endpoint, behind Caddy's
// admin access controls.
type PurgeAPI struct{}

// CaddyModule returns the Caddy module information.
func (PurgeAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.phantom_token",
		New: func() caddy.Module { return new(PurgeAPI) },
	}
}

// Routes implements caddy.AdminRouter.
func (PurgeAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: "/phantom_token/purge", Handler: caddy.AdminHandlerFunc(servePurge)}}
}

// purgeRequest is the body of a purge: exactly one field set.
type purgeRequest struct {
	Token    *string `json:"token"`
	Subject  *string `json:"subject"`
	ClientID *string `json:"client_id"`
	All      *bool   `json:"all"`
}

// purgeAnswer is the body of a purge's answer.
type purgeAnswer struct {
	Purged      string `json:"purged"`                // token, subject, client_id or all
	Fingerprint string `json:"fingerprint,omitempty"` // of the token, subject or client id
	Caches      int    `json:"caches"`                // local handler caches reached
	Fleet       string `json:"fleet"`                 // "reached", "not reached" or "none" (no redis)
	Error       string `json:"error,omitempty"`       // why the fleet was not reached
}

// maxPurgeBody bounds the body: a token or an id, and JSON framing.
const maxPurgeBody = 64 << 10

// purgeFleetTimeout bounds the Redis writes of one purge.
const purgeFleetTimeout = 2 * time.Second

func servePurge(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("method not allowed: use POST")}
	}
	req, err := readPurgeRequest(r.Body)
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: err}
	}
	ctx, cancel := context.WithTimeout(r.Context(), purgeFleetTimeout)
	defer cancel()
	ans, fleetErr := purge(ctx, req, time.Now())
	status := http.StatusOK
	if fleetErr != nil {
		status = http.StatusBadGateway
		ans.Error = "the fleet was not reached (this node purged): " + fleetErr.Error()
	}
	caddy.Log().Named("phantom_token").Info("purge",
		zap.String("purged", ans.Purged), zap.String("fingerprint", ans.Fingerprint),
		zap.Int("caches", ans.Caches), zap.String("fleet", ans.Fleet))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(ans)
}

// readPurgeRequest parses and checks a purge body.
func readPurgeRequest(body io.Reader) (purgeRequest, error) {
	var req purgeRequest
	dec := json.NewDecoder(io.LimitReader(body, maxPurgeBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, fmt.Errorf(`body: expected one of {"token": "…"}, {"subject": "…"}, {"client_id": "…"}, {"all": true}: %v`, err)
	}
	if dec.More() {
		return req, errors.New("body: expected one JSON object")
	}
	set := 0
	for _, s := range []*string{req.Token, req.Subject, req.ClientID} {
		if s != nil {
			set++
			if *s == "" {
				return req, errors.New("body: token, subject and client_id must not be empty")
			}
		}
	}
	if req.All != nil {
		set++
		if !*req.All {
			return req, errors.New(`body: "all" must be true`)
		}
	}
	if set != 1 {
		return req, errors.New(`body: set exactly one of token, subject, client_id, all`)
	}
	return req, nil
}

// purge applies req to every live handler's cache at once, then sends it
// to every fleet those handlers share a Redis store with. The error says
// which fleets were not reached; the local purge has happened anyway.
func purge(ctx context.Context, req purgeRequest, at time.Time) (purgeAnswer, error) {
	hs := handlersNow()
	type work struct {
		keys  []cache.Key
		marks []redisstore.Mark
	}
	byDomain := map[*purgeDomain]*work{}
	for _, h := range hs {
		if byDomain[h.domain] == nil {
			byDomain[h.domain] = &work{}
		}
	}
	ans := purgeAnswer{Caches: len(hs), Fleet: "none"}
	switch {
	case req.Token != nil:
		ans.Purged, ans.Fingerprint = "token", fingerprint(*req.Token)
		for _, h := range hs {
			k := h.keyer.Key(*req.Token)
			h.tokens.Del(k)
			w := byDomain[h.domain]
			w.keys = append(w.keys, k)
			w.marks = append(w.marks, redisstore.KeyMark(k, at))
		}
	case req.Subject != nil, req.ClientID != nil:
		kind, value := redisstore.MarkSubject, req.Subject
		ans.Purged = "subject"
		if req.ClientID != nil {
			kind, value, ans.Purged = redisstore.MarkClient, req.ClientID, "client_id"
		}
		ans.Fingerprint = fingerprint(*value)
		for d, w := range byDomain {
			h := d.hash(kind, *value)
			w.marks = append(w.marks, redisstore.Mark{Kind: kind, Hash: hex.EncodeToString(h[:]), At: at})
		}
	default:
		ans.Purged = "all"
		for _, w := range byDomain {
			w.marks = append(w.marks, redisstore.Mark{Kind: redisstore.MarkAll, At: at})
		}
	}
	// Locally first, so this node refuses at once whatever Redis does.
	for d, w := range byDomain {
		d.add(w.marks...)
	}
	var failed []string
	for d, w := range byDomain {
		if d.store == nil {
			continue
		}
		ans.Fleet = "reached"
		if err := d.store.Purge(ctx, w.keys, w.marks); err != nil {
			failed = append(failed, err.Error())
		}
	}
	if len(failed) > 0 {
		ans.Fleet = "not reached"
		return ans, errors.New(strings.Join(failed, "; "))
	}
	return ans, nil
}

// Interface guard
var _ caddy.AdminRouter = PurgeAPI{}
