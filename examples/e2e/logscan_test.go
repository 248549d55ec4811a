package e2e

import (
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/phantomgate/caddy-phantom-token/examples/internal/gatewaytest"
)

// debugLog receives every gateway config's DEBUG log; TestMain scans it
// after the tests for tokens, JWTs, client secrets and private keys.
var debugLog *gatewaytest.LogScan

// stacksStarted tells the scan whether any gateway ran.
var stacksStarted atomic.Int64

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "phantom-examples-e2e-log-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "creating the debug log directory:", err)
		os.Exit(2)
	}
	debugLog = gatewaytest.NewLogScan(dir, gatewaySecret, agentSecret, readerSecret)
	code := m.Run()
	// The scan runs whatever the tests' verdict.
	if scan := debugLog.Scan(os.Stderr, stacksStarted.Load() > 0); scan != 0 {
		code = scan
	}
	_ = os.RemoveAll(dir)
	os.Exit(code)
}
