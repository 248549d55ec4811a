package demoas_test

import (
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/phantomgate/caddy-phantom-token/examples/demoas"
)

// docServer serves Client ID Metadata Documents; each path's document is
// made by a function of the server's base URL, so that client_id can name
// the document's own URL.
type docServer struct {
	*httptest.Server
	fetches atomic.Int64
}

func newDocServer(t *testing.T, tls bool, docs map[string]func(base string) (status int, contentType, body string)) *docServer {
	t.Helper()
	d := &docServer{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.fetches.Add(1)
		doc, ok := docs[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		status, ct, body := doc(d.URL)
		if status == http.StatusFound {
			http.Redirect(w, r, body, status)
			return
		}
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	})
	d.Server = httptest.NewUnstartedServer(h)
	// Handshakes refused by clients that do not trust the test CA are
	// expected; do not log them.
	d.Config.ErrorLog = log.New(io.Discard, "", 0)
	if tls {
		d.StartTLS()
	} else {
		d.Start()
	}
	t.Cleanup(d.Close)
	return d
}

// metadataDoc returns a document for path, with changes applied.
func metadataDoc(path string, change func(m map[string]any)) func(string) (int, string, string) {
	return func(base string) (int, string, string) {
		m := map[string]any{
			"client_id":                  base + path,
			"client_name":                "CIMD App",
			"client_uri":                 "https://app.example.com",
			"redirect_uris":              []string{publicRedir},
			"token_endpoint_auth_method": "none",
			"grant_types":                []string{"authorization_code", "refresh_token"},
			"response_types":             []string{"code"},
			"scope":                      "mcp:tools",
		}
		if change != nil {
			change(m)
		}
		b, _ := json.Marshal(m)
		return http.StatusOK, "application/json; charset=utf-8", string(b)
	}
}

func TestClientIDMetadataDocument(t *testing.T) {
	docs := map[string]func(string) (int, string, string){
		"/good.json":          metadataDoc("/good.json", nil),
		"/no-auth-method":     metadataDoc("/no-auth-method", func(m map[string]any) { delete(m, "token_endpoint_auth_method") }),
		"/mismatch.json":      metadataDoc("/mismatch.json", func(m map[string]any) { m["client_id"] = "https://other.example.com/client.json" }),
		"/no-redirects.json":  metadataDoc("/no-redirects.json", func(m map[string]any) { delete(m, "redirect_uris") }),
		"/basic.json":         metadataDoc("/basic.json", func(m map[string]any) { m["token_endpoint_auth_method"] = "client_secret_basic" }),
		"/private-key.json":   metadataDoc("/private-key.json", func(m map[string]any) { m["token_endpoint_auth_method"] = "private_key_jwt" }),
		"/secret.json":        metadataDoc("/secret.json", func(m map[string]any) { m["client_secret"] = "s3cret" }),
		"/bad-redirect.json":  metadataDoc("/bad-redirect.json", func(m map[string]any) { m["redirect_uris"] = []string{"http://app.example.com/cb"} }),
		"/implicit.json":      metadataDoc("/implicit.json", func(m map[string]any) { m["response_types"] = []string{"token"} }),
		"/client-credentials": metadataDoc("/client-credentials", func(m map[string]any) { m["grant_types"] = []string{"client_credentials"} }),
		"/html": func(base string) (int, string, string) {
			_, _, body := metadataDoc("/html", nil)(base)
			return http.StatusOK, "text/html", body
		},
		"/big.json": func(base string) (int, string, string) {
			_, ct, body := metadataDoc("/big.json", func(m map[string]any) { m["client_name"] = strings.Repeat("x", 70<<10) })(base)
			return http.StatusOK, ct, body
		},
		"/gone.json": func(string) (int, string, string) { return http.StatusGone, "application/json", "{}" },
		"/redirect.json": func(base string) (int, string, string) {
			return http.StatusFound, "", base + "/good.json"
		},
		"/not-json": func(string) (int, string, string) { return http.StatusOK, "application/json", "{not json" },
	}
	tlsDocs := newDocServer(t, true, docs)
	httpDocs := newDocServer(t, false, docs) // on 127.0.0.1: allowed over http for demos

	cfg := loginConfig()
	cfg.MetadataClient = tlsDocs.Client()
	s := startConfig(t, cfg)

	t.Run("https document: the whole flow", func(t *testing.T) {
		clientID := tlsDocs.URL + "/good.json"
		f := newFlow(clientID)
		resp, page := get(t, f.url(s))
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, `<strong id="client-name">CIMD App</strong>`) ||
			!strings.Contains(page, `<code id="client-id">`+clientID+`</code>`) {
			t.Fatalf("status %d:\n%s", resp.StatusCode, page)
		}
		tr := loginToken(t, s, f)
		m := introspectJSON(t, s, tr["access_token"].(string))
		if m["client_id"] != clientID || m["sub"] != userName {
			t.Fatalf("introspection %v", m)
		}
		if tr["refresh_token"] == nil {
			t.Error("no refresh token though the document lists the refresh_token grant")
		}
	})
	t.Run("documents are cached", func(t *testing.T) {
		n := tlsDocs.fetches.Load()
		f := newFlow(tlsDocs.URL + "/good.json")
		loginToken(t, s, f)
		if got := tlsDocs.fetches.Load(); got != n {
			t.Fatalf("%d more fetches, want 0 (cached)", got-n)
		}
	})
	t.Run("no token_endpoint_auth_method means none", func(t *testing.T) {
		loginToken(t, s, newFlow(tlsDocs.URL+"/no-auth-method"))
	})
	t.Run("http document on loopback", func(t *testing.T) {
		f := newFlow(httpDocs.URL + "/good.json")
		f.redirectURI = "http://127.0.0.1:4444/callback" // another port of publicRedir
		loginToken(t, s, f)
	})

	for _, tc := range []struct{ name, clientID, detail string }{
		{"client_id differs from the URL", tlsDocs.URL + "/mismatch.json", "does not equal its URL"},
		{"no redirect_uris", tlsDocs.URL + "/no-redirects.json", "redirect_uris is required"},
		{"client_secret_basic", tlsDocs.URL + "/basic.json", "only none is supported"},
		{"private_key_jwt", tlsDocs.URL + "/private-key.json", "only none is supported"},
		{"document with a secret", tlsDocs.URL + "/secret.json", "must not contain a client secret"},
		{"http redirect URI not on loopback", tlsDocs.URL + "/bad-redirect.json", "not loopback"},
		{"response type token", tlsDocs.URL + "/implicit.json", "response type"},
		{"client_credentials grant", tlsDocs.URL + "/client-credentials", "grant type"},
		{"not a JSON content type", tlsDocs.URL + "/html", "Content-Type"},
		{"larger than 64 KiB", tlsDocs.URL + "/big.json", "exceeds 65536 bytes"},
		{"status 410", tlsDocs.URL + "/gone.json", "status 410"},
		{"redirect", tlsDocs.URL + "/redirect.json", "status 302"},
		{"not JSON", tlsDocs.URL + "/not-json", "invalid character"},
		{"not found", tlsDocs.URL + "/missing.json", "status 404"},
		{"no path", tlsDocs.URL, ""},
		{"root path", tlsDocs.URL + "/", ""},
		{"fragment", tlsDocs.URL + "/good.json#x", ""},
		{"dot segment", tlsDocs.URL + "/x/../good.json", ""},
		{"user information", strings.Replace(tlsDocs.URL, "://", "://user@", 1) + "/good.json", ""},
		{"http not on loopback", "http://example.com/client.json", ""},
		{"ftp", "ftp://127.0.0.1/client.json", ""},
	} {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			n := tlsDocs.fetches.Load()
			f := newFlow(tc.clientID)
			resp, body := get(t, f.url(s))
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" ||
				!strings.Contains(body, "invalid_client") || !strings.Contains(body, tc.detail) {
				t.Fatalf("status %d, Location %q, want detail %q:\n%s", resp.StatusCode, resp.Header.Get("Location"), tc.detail, body)
			}
			if tc.detail == "" && tlsDocs.fetches.Load() != n {
				t.Fatal("a client_id that is not a document URL was fetched")
			}
		})
	}

	t.Run("the default client does not trust the test CA", func(t *testing.T) {
		cfg := loginConfig()
		s := startConfig(t, cfg)
		resp, body := get(t, newFlow(tlsDocs.URL+"/good.json").url(s))
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "certificate") {
			t.Fatalf("status %d:\n%s", resp.StatusCode, body)
		}
	})

	t.Run("the token endpoint resolves documents too", func(t *testing.T) {
		form := map[string][]string{
			"grant_type": {"authorization_code"}, "code": {"x"}, "code_verifier": {newVerifier()},
			"redirect_uri": {publicRedir}, "client_id": {tlsDocs.URL + "/mismatch.json"},
		}
		resp, body := post(t, s.URL+demoas.TokenPath, "", "", form, "")
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "invalid_client") {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
	})
}

func TestNoDocumentsWithoutUsers(t *testing.T) {
	docs := newDocServer(t, false, map[string]func(string) (int, string, string){"/good.json": metadataDoc("/good.json", nil)})
	s := start(t, 0)
	form := map[string][]string{"grant_type": {"client_credentials"}, "client_id": {docs.URL + "/good.json"}}
	resp, _ := post(t, s.URL+demoas.TokenPath, "", "", form, "")
	if resp.StatusCode != http.StatusUnauthorized || docs.fetches.Load() != 0 {
		t.Fatalf("status %d, %d fetches; want 401 and none", resp.StatusCode, docs.fetches.Load())
	}
}
