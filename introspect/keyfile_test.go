package introspect

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
)

func TestLoadPrivateKey(t *testing.T) {
	testKeys(t)
	dir := t.TempDir()
	must := func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	pemOf := func(blocks ...*pem.Block) []byte {
		var out []byte
		for _, b := range blocks {
			out = append(out, pem.EncodeToMemory(b)...)
		}
		return out
	}
	jsonOf := func(v any) []byte { return must(json.Marshal(v)) }
	ecParams := &pem.Block{Type: "EC PARAMETERS", Bytes: []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}}
	smallRSA, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	jwkSet := func(keys ...jwk.Key) []byte {
		set := jwk.NewSet()
		for _, k := range keys {
			_ = set.AddKey(k)
		}
		return jsonOf(set)
	}

	tests := []struct {
		name    string
		content []byte
		wantAlg jwa.SignatureAlgorithm
		wantKid string
		wantErr string
	}{
		{name: "pkcs8 rsa", wantAlg: jwa.RS256,
			content: pemOf(&pem.Block{Type: "PRIVATE KEY", Bytes: must(x509.MarshalPKCS8PrivateKey(rsaKey1))})},
		{name: "pkcs1 rsa", wantAlg: jwa.RS256,
			content: pemOf(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey2)})},
		{name: "sec1 ec after ec parameters (openssl ecparam -genkey)", wantAlg: jwa.ES256,
			content: pemOf(ecParams, &pem.Block{Type: "EC PRIVATE KEY", Bytes: must(x509.MarshalECPrivateKey(ecKey))})},
		{name: "pkcs8 ec", wantAlg: jwa.ES256,
			content: pemOf(&pem.Block{Type: "PRIVATE KEY", Bytes: must(x509.MarshalPKCS8PrivateKey(ecKey))})},
		{name: "pkcs8 ed25519", wantAlg: jwa.EdDSA,
			content: pemOf(&pem.Block{Type: "PRIVATE KEY", Bytes: must(x509.MarshalPKCS8PrivateKey(edKey))})},
		{name: "jwk with kid and alg", wantAlg: jwa.PS256, wantKid: "gw-2026",
			content: jsonOf(privateJWK(t, rsaKey1, "gw-2026", "PS256"))},
		{name: "jwk ec", wantAlg: jwa.ES256, wantKid: "ec1",
			content: jsonOf(privateJWK(t, ecKey, "ec1", ""))},
		{name: "jwk set with one key", wantAlg: jwa.EdDSA, wantKid: "ed",
			content: jwkSet(privateJWK(t, edKey, "ed", ""))},

		{name: "jwk set with two keys", wantErr: "holds 2 keys",
			content: jwkSet(privateJWK(t, edKey, "a", ""), privateJWK(t, ecKey, "b", ""))},
		{name: "public key pem", wantErr: "not a private key",
			content: pemOf(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(ecKey.Public()))})},
		{name: "certificate pem", wantErr: "not a private key",
			content: pemOf(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{0x30, 0x00}})},
		{name: "public jwk", wantErr: "not a private key",
			content: jsonOf(publicJWK(t, rsaKey1, "k", ""))},
		{name: "symmetric jwk", wantErr: "symmetric keys are not supported",
			content: []byte(`{"kty":"oct","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"}`)},
		{name: "garbage", wantErr: "not a pem private key or a jwk", content: []byte("hello, world")},
		{name: "garbage json", wantErr: "not a pem private key or a jwk", content: []byte(`{"kty":"RSA","n":"x"`)},
		{name: "empty", wantErr: "not a pem private key or a jwk", content: nil},
		{name: "corrupt pkcs8", wantErr: `pem block "PRIVATE KEY" is not a valid key`,
			content: pemOf(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("corrupt-key-bytes")})},
		{name: "only ec parameters", wantErr: "no private key in the pem file", content: pemOf(ecParams)},
		{name: "encrypted pkcs8", wantErr: "encrypted keys are not supported",
			content: pemOf(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1, 2, 3}})},
		{name: "encrypted legacy pem", wantErr: "encrypted keys are not supported",
			content: pemOf(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}, Bytes: []byte{1}})},
		{name: "rsa 1024", wantErr: "rsa key has 1024 bits",
			content: pemOf(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(smallRSA)})},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".key")
			if err := os.WriteFile(path, tt.content, 0o600); err != nil {
				t.Fatal(err)
			}
			key, err := LoadPrivateKey(path)
			if tt.wantErr != "" {
				wantErrContaining(t, err, tt.wantErr)
				if !strings.Contains(err.Error(), path) {
					t.Fatalf("error does not name the file: %v", err)
				}
				assertNoKeyMaterial(t, err.Error(), tt.content)
				return
			}
			if err != nil {
				t.Fatalf("LoadPrivateKey: %v", err)
			}
			if isPriv, _ := jwk.IsPrivateKey(key); !isPriv {
				t.Fatal("loaded key is not private")
			}
			alg, err := KeyAlgorithm(key)
			if err != nil || alg != tt.wantAlg {
				t.Fatalf("alg = %q (%v), want %q", alg, err, tt.wantAlg)
			}
			if key.KeyID() != tt.wantKid {
				t.Fatalf("kid = %q, want %q", key.KeyID(), tt.wantKid)
			}
			// The key signs client assertions.
			if _, err := newAuthenticator(authConfig{method: PrivateKeyJWT, clientID: "gw", key: key, endpoint: "https://as.example.com/t"}); err != nil {
				t.Fatalf("key %d cannot sign assertions: %v", i, err)
			}
		})
	}

	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(dir, "absent.pem")
		_, err := LoadPrivateKey(path)
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Fatalf("err = %v", err)
		}
	})
}

// assertNoKeyMaterial fails when msg quotes any 12-character run of the
// file's content other than PEM armour.
func assertNoKeyMaterial(t *testing.T, msg string, content []byte) {
	t.Helper()
	for _, line := range strings.Split(string(content), "\n") {
		if strings.HasPrefix(line, "-----") || len(line) < 12 {
			continue
		}
		for i := 0; i+12 <= len(line); i += 6 {
			if strings.Contains(msg, line[i:i+12]) {
				t.Fatalf("error quotes the key file: %q", msg)
			}
		}
	}
}
