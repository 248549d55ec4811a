package demoas

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// registration is the RFC 7591 §3.2.1 client information response.
type registration struct {
	*clientMetadata
	ClientIDIssuedAt      int64  `json:"client_id_issued_at"`
	ClientSecret          string `json:"client_secret,omitempty"`
	ClientSecretExpiresAt *int64 `json:"client_secret_expires_at,omitempty"`
}

// handleRegister serves RFC 7591 dynamic client registration, for MCP
// clients that do not publish a Client ID Metadata Document. Registration is
// open (no initial access token), as MCP clients expect.
func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	var m clientMetadata
	if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_client_metadata", "the body is not a JSON object of client metadata")
		return
	}
	// The server chooses the client_id; RFC 7591's default authentication
	// method is client_secret_basic.
	m.ClientID = ""
	if err := m.normalize("client_secret_basic"); err != nil {
		var me *metadataError
		if errors.As(err, &me) {
			writeError(w, http.StatusBadRequest, me.code, me.description)
			return
		}
		writeError(w, http.StatusBadRequest, "invalid_client_metadata", "invalid client metadata")
		return
	}

	// A random ID that is not a URL, so it is never taken for a metadata
	// document; secrets are URL-safe base64, without "%" or "+" (see doc.go).
	m.ClientID = "dcr-" + randomString(16, hex.EncodeToString)
	resp := registration{clientMetadata: &m, ClientIDIssuedAt: time.Now().Unix()}
	var hash []byte
	if m.TokenEndpointAuthMethod != "none" {
		resp.ClientSecret = randomString(32, base64.RawURLEncoding.EncodeToString)
		never := int64(0)
		resp.ClientSecretExpiresAt = &never
		var err error
		if hash, err = bcrypt.GenerateFromPassword([]byte(resp.ClientSecret), bcrypt.MinCost); err != nil {
			writeError(w, http.StatusInternalServerError, "server_error", "could not register the client")
			return
		}
	}
	s.store.register(newLoginClient(m.ClientID, &m, s.store.loginClients, hash))

	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(resp)
}

// randomString returns n random bytes encoded with enc.
func randomString(n int, enc func([]byte) string) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+).
	return enc(b)
}
