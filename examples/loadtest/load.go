package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// histogram is a log-linear latency histogram in the spirit of HDR
// histograms: 512 linear sub-buckets per power of two of nanoseconds, so
// any recorded value is known within 1/512 (~0.2 %: 16 µs at 8 ms, fine
// enough to compare p99s against a 0.2 ms target), in a fixed 224 KiB
// array.
type histogram struct {
	counts [subBuckets * 56]uint64 // up to 2^(56-1+9) ns: far beyond any timeout
	n      uint64
}

const (
	subBucketBits = 9
	subBuckets    = 1 << subBucketBits
)

func bucketOf(ns int64) int {
	if ns < 0 {
		ns = 0
	}
	v := uint64(ns)
	if v < subBuckets {
		return int(v)
	}
	e := bits.Len64(v) - subBucketBits - 1 // v>>e is in [subBuckets, 2*subBuckets)
	return subBuckets + e*subBuckets + int(v>>e) - subBuckets
}

// valueOf is the middle of bucket i, in nanoseconds.
func valueOf(i int) time.Duration {
	if i < subBuckets {
		return time.Duration(i)
	}
	e := (i - subBuckets) / subBuckets
	m := uint64((i-subBuckets)%subBuckets + subBuckets)
	return time.Duration(m<<e + (uint64(1)<<e)/2)
}

func (h *histogram) record(d time.Duration) {
	i := bucketOf(int64(d))
	if i >= len(h.counts) {
		i = len(h.counts) - 1
	}
	h.counts[i]++
	h.n++
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// quantile returns the value below which a fraction q of the samples lie.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n-1)) + 1
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return valueOf(i)
		}
	}
	return valueOf(len(h.counts) - 1)
}

// conn is a minimal HTTP/1.1 keep-alive client for one connection. The
// load generator shares the CPUs with Caddy, so it is kept much cheaper
// than net/http's client: requests are built into a reused buffer and
// responses are parsed only as far as status, length and connection
// handling require.
type conn struct {
	addr string
	c    net.Conn
	br   *bufio.Reader
	req  []byte
	body []byte // nil: GET; else POST with this JSON body
}

func dial(addr string) (*conn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &conn{addr: addr, c: c, br: bufio.NewReaderSize(c, 16<<10), req: make([]byte, 0, 512)}, nil
}

func (c *conn) close() {
	if c.c != nil {
		_ = c.c.Close()
		c.c = nil
	}
}

// redial replaces a connection the server closed or that failed.
func (c *conn) redial() error {
	c.close()
	nc, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
	if err != nil {
		return err
	}
	c.c = nc
	c.br.Reset(nc)
	return nil
}

// write sends GET /mcp with the bearer token (POST with c.body when set),
// without waiting.
func (c *conn) write(token string) error {
	if c.body == nil {
		c.req = append(c.req[:0], "GET /mcp HTTP/1.1\r\nHost: "...)
	} else {
		c.req = append(c.req[:0], "POST /mcp HTTP/1.1\r\nHost: "...)
	}
	c.req = append(c.req, c.addr...)
	c.req = append(c.req, "\r\nUser-Agent: phantom-loadtest\r\nAuthorization: Bearer "...)
	c.req = append(c.req, token...)
	if c.body != nil {
		c.req = append(c.req, "\r\nContent-Type: application/json\r\nContent-Length: "...)
		c.req = strconv.AppendInt(c.req, int64(len(c.body)), 10)
	}
	c.req = append(c.req, "\r\n\r\n"...)
	c.req = append(c.req, c.body...)
	_ = c.c.SetDeadline(time.Now().Add(30 * time.Second))
	_, err := c.c.Write(c.req)
	return err
}

var errBadResponse = errors.New("malformed response")

// read reads one response and returns its status. It handles
// Content-Length and chunked bodies, and Connection: close.
func (c *conn) read() (int, error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, errBadResponse
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, errBadResponse
	}
	length, chunked, closeAfter := int64(-1), false, false
	for {
		line, err = c.br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, errBadResponse
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.ParseInt(string(value), 10, 64); err != nil {
				return 0, errBadResponse
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			closeAfter = bytes.EqualFold(value, []byte("close"))
		}
	}
	switch {
	case chunked:
		err = c.discardChunked()
	case length > 0:
		_, err = c.br.Discard(int(length))
	case length < 0 && status != 204 && status != 304:
		// No length: the body runs to the end of the connection.
		_, err = io.Copy(io.Discard, c.br)
		closeAfter = true
	}
	if err != nil {
		return 0, err
	}
	if closeAfter {
		if err := c.redial(); err != nil {
			return status, err
		}
	}
	return status, nil
}

func (c *conn) discardChunked() error {
	for range 1 << 20 { // bounded: far more chunks than any reply here has
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		size, err := strconv.ParseInt(string(bytes.TrimSpace(bytes.SplitN(line, []byte(";"), 2)[0])), 16, 64)
		if err != nil {
			return errBadResponse
		}
		if size == 0 {
			for { // trailers, up to the blank line
				line, err = c.br.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(bytes.TrimRight(line, "\r\n")) == 0 {
					return nil
				}
			}
		}
		if _, err := c.br.Discard(int(size) + 2); err != nil {
			return err
		}
	}
	return errBadResponse
}

// do sends one request and reads its response; a broken connection is
// redialled once and counts as an error for this request.
func (c *conn) do(token string) (int, error) {
	if c.c == nil {
		if err := c.redial(); err != nil {
			return 0, err
		}
	}
	if err := c.write(token); err != nil {
		_ = c.redial()
		return 0, err
	}
	status, err := c.read()
	if err != nil {
		_ = c.redial()
	}
	return status, err
}

// loadSpec is one closed-loop measurement: conc workers, each on its own
// keep-alive connection, send the next request as soon as the previous
// one is answered, until the duration is over or maxRequests were sent.
type loadSpec struct {
	addr        string
	conc        int
	duration    time.Duration
	maxRequests int64
	// token returns the token of the worker's i-th request.
	token func(worker, i int) string
	// body, when set, makes every request a POST with this JSON body.
	body []byte
}

// loadResult is what one measurement saw.
type loadResult struct {
	requests int64 // answered with 200
	errors   int64 // non-200 statuses and transport errors
	elapsed  time.Duration
	hist     histogram
	firstErr string
}

func (r *loadResult) add(o *loadResult) {
	r.requests += o.requests
	r.errors += o.errors
	r.elapsed += o.elapsed
	r.hist.merge(&o.hist)
	if r.firstErr == "" {
		r.firstErr = o.firstErr
	}
}

// observe records one request: a success goes into the histogram, a
// failure is counted and the first one kept for the report.
func (r *loadResult) observe(status int, err error, d time.Duration) bool {
	switch {
	case err != nil:
		r.errors++
		if r.firstErr == "" {
			r.firstErr = err.Error()
		}
	case status != 200:
		r.errors++
		if r.firstErr == "" {
			r.firstErr = "status " + strconv.Itoa(status)
		}
	default:
		r.requests++
		r.hist.record(d)
		return true
	}
	return false
}

func (r *loadResult) rps() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.requests) / r.elapsed.Seconds()
}

// run performs the measurement.
func (s loadSpec) run() (*loadResult, error) {
	conns := make([]*conn, s.conc)
	for i := range conns {
		c, err := dial(s.addr)
		if err != nil {
			for _, c := range conns[:i] {
				c.close()
			}
			return nil, fmt.Errorf("dialling %s: %v", s.addr, err)
		}
		c.body = s.body
		conns[i] = c
	}
	defer func() {
		for _, c := range conns {
			c.close()
		}
	}()

	var sent atomic.Int64
	results := make([]loadResult, s.conc)
	start := time.Now()
	deadline := start.Add(s.duration)
	var wg sync.WaitGroup
	for w := range s.conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, c := &results[w], conns[w]
			for i := 0; ; i++ {
				if sent.Add(1) > s.maxRequests {
					return
				}
				t0 := time.Now()
				if !t0.Before(deadline) {
					return
				}
				status, err := c.do(s.token(w, i))
				d := time.Since(t0)
				res.observe(status, err, d)
			}
		}()
	}
	wg.Wait()
	total := &loadResult{}
	for i := range results {
		results[i].elapsed = 0
		total.add(&results[i])
	}
	total.elapsed = time.Since(start)
	return total, nil
}
