package mcpserver

import "time"

// SetJWKSRetry sets how long a failed JWKS fetch blocks the next one, and
// returns a function that restores it.
func SetJWKSRetry(d time.Duration) (restore func()) {
	old := jwksRetry
	jwksRetry = d
	return func() { jwksRetry = old }
}
