package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// TestUpstreamAnswersKeepAliveRequests checks the minimal upstream against
// Go's own HTTP client: several requests (one with a body, one with a
// 4 KiB header) on one connection, each answered 200 "ok\n".
func TestUpstreamAnswersKeepAliveRequests(t *testing.T) {
	addr, stop, err := startUpstream()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	tr := &http.Transport{MaxConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	dials := 0
	tr.DialContext = func(ctx context.Context, network, a string) (net.Conn, error) {
		dials++
		return (&net.Dialer{}).DialContext(ctx, network, a)
	}
	for i, body := range []string{"", "a body of some length", ""} {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/mcp", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+strings.Repeat("j", 4096*i))
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(got) != "ok\n" {
			t.Fatalf("request %d: %d %q, want 200 \"ok\\n\"", i, resp.StatusCode, got)
		}
	}
	if dials != 1 {
		t.Errorf("%d connections for 3 requests, want 1 (keep-alive)", dials)
	}
}

// TestUpstreamRefusesWhatItCannotFrame checks that a chunked request body
// gets a 501 and a closed connection rather than a misread stream.
func TestUpstreamRefusesWhatItCannotFrame(t *testing.T) {
	addr, stop, err := startUpstream()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "POST /mcp HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusNotImplemented || !resp.Close {
		t.Errorf("got %d (close %v), want 501 and Connection: close", resp.StatusCode, resp.Close)
	}
}
