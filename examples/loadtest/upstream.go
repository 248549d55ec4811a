package main

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"strconv"
	"sync"
)

// upstreamReply is the upstream's whole answer to every request: 200 with
// a 3-byte body and a Content-Length, so connections stay open.
var upstreamReply = []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n")

// startUpstream is the fastest useful backend: a minimal HTTP/1.1
// keep-alive responder on a fresh 127.0.0.1 port. It shares the CPUs with
// the gateway, like the load generator, so it is kept as cheap as the
// load generator is: it reads each request only as far as framing needs
// (the request line, Content-Length, Transfer-Encoding, Connection) and
// copies nothing. net/http's server would parse and copy every header,
// and charge the machine for the size of the JWT upstream twice over:
// that cost belongs to a real MCP server, not to the gateway measured
// here. It returns the address and a function that stops it.
func startUpstream() (addr string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	var (
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = struct{}{}
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				serveUpstreamConn(c)
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
			}()
		}
	}()
	return ln.Addr().String(), func() {
		_ = ln.Close()
		mu.Lock()
		for c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}, nil
}

var errUnsupportedRequest = errors.New("upstream: request framing not supported")

// serveUpstreamConn answers the requests of one connection until the
// peer closes it, asks to close it, or sends what it cannot frame.
func serveUpstreamConn(c net.Conn) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 16<<10)
	for {
		closeAfter, err := readUpstreamRequest(br)
		if err != nil {
			if errors.Is(err, errUnsupportedRequest) {
				_, _ = c.Write([]byte("HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
			}
			return
		}
		if _, err := c.Write(upstreamReply); err != nil || closeAfter {
			return
		}
	}
}

// readUpstreamRequest consumes one request, its headers and a
// Content-Length body, and reports whether the client asked to close the
// connection after it. A chunked request body is not supported (the
// gateway forwards none: every request here is a GET).
func readUpstreamRequest(br *bufio.Reader) (closeAfter bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return false, err
	}
	if !bytes.HasSuffix(bytes.TrimRight(line, "\r\n"), []byte("HTTP/1.1")) {
		return false, errUnsupportedRequest
	}
	length := 0
	for {
		line, err = br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A header line longer than the buffer (16 KiB): skip the rest
			// of it; none of the framing headers is that long.
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			if err != nil {
				return false, err
			}
			continue
		}
		if err != nil {
			return false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return false, errUnsupportedRequest
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil || length < 0 {
				return false, errUnsupportedRequest
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return false, errUnsupportedRequest
		case bytes.EqualFold(name, []byte("Connection")):
			closeAfter = bytes.EqualFold(value, []byte("close"))
		}
	}
	if length > 0 {
		if _, err := br.Discard(length); err != nil {
			return false, err
		}
	}
	return closeAfter, nil
}
