package introspect

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/lestrrat-go/jwx/v2/jwk"
)

// maxKeyFileBytes caps a key file: keys are a few KiB at most.
const maxKeyFileBytes = 1 << 20

// LoadPrivateKey reads a private signing key from path: a PEM file holding
// a PKCS#8 ("PRIVATE KEY"), PKCS#1 ("RSA PRIVATE KEY") or SEC1 ("EC PRIVATE
// KEY") key, or a JSON file holding one JWK (or a JWK set with exactly one
// key). The key must be a private RSA (2048 bits or more), EC (P-256, P-384,
// P-521) or Ed25519 key; see [KeyAlgorithm]. A JWK keeps its "kid" and
// "alg"; a PEM key has neither. Errors name the path, never key material;
// encrypted PEM keys are not supported.
func LoadPrivateKey(path string) (jwk.Key, error) {
	data, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	var key jwk.Key
	if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && trimmed[0] == '{' {
		key, err = parseJWKFile(trimmed)
	} else {
		key, err = parsePEMKey(data)
	}
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	if _, _, err := signingKey(key); err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return key, nil
}

// readKeyFile reads the file with a size cap. The os error names the path
// and the cause only.
func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("key file %s: reading failed", path)
	}
	if len(data) > maxKeyFileBytes {
		return nil, fmt.Errorf("key file %s: larger than %d bytes", path, maxKeyFileBytes)
	}
	return data, nil
}

// parseJWKFile parses a single JWK, or a set holding exactly one key.
// jwx's own errors are not passed on: they may quote the input.
func parseJWKFile(data []byte) (jwk.Key, error) {
	if key, err := jwk.ParseKey(data); err == nil {
		return key, nil
	}
	set, err := jwk.Parse(data)
	if err != nil || set.Len() == 0 {
		return nil, errNotAKey
	}
	if set.Len() != 1 {
		return nil, fmt.Errorf("jwk set holds %d keys, want exactly one", set.Len())
	}
	key, _ := set.Key(0)
	return key, nil
}

// parsePEMKey finds the first private key block of a PEM file, skipping
// blocks such as "EC PARAMETERS" that openssl writes before the key.
func parsePEMKey(data []byte) (jwk.Key, error) {
	rest := data
	sawBlock := false
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		sawBlock = true
		var raw any
		var err error
		switch block.Type {
		case "PRIVATE KEY":
			raw, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			if _, encrypted := block.Headers["Proc-Type"]; encrypted {
				return nil, errEncryptedKey
			}
			raw, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			if _, encrypted := block.Headers["Proc-Type"]; encrypted {
				return nil, errEncryptedKey
			}
			raw, err = x509.ParseECPrivateKey(block.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, errEncryptedKey
		case "PUBLIC KEY", "RSA PUBLIC KEY", "CERTIFICATE":
			return nil, errPublicKeyFile
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("pem block %q is not a valid key", block.Type)
		}
		key, err := jwk.FromRaw(raw)
		if err != nil {
			return nil, errNotAKey
		}
		return key, nil
	}
	if sawBlock {
		return nil, errNoPrivateKey
	}
	return nil, errNotAKey
}

// Key file errors.
var (
	errNotAKey       = errors.New("not a pem private key or a jwk")
	errNoPrivateKey  = errors.New("no private key in the pem file")
	errPublicKeyFile = errors.New("not a private key")
	errEncryptedKey  = errors.New("encrypted keys are not supported")
)
