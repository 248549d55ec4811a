// Package redistest starts real redis-server processes on loopback for
// tests: a standalone server, and a Redis Cluster of three masters. Both
// run without persistence in a temporary directory and stop with the test.
//
// Without redis-server on PATH the test is skipped, except under CI=true,
// where it fails: CI installs Redis (.ci/run, scripts/test.sh).
package redistest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Server is one redis-server process.
type Server struct {
	t    testing.TB
	Addr string // 127.0.0.1:port
	dir  string
	args []string
	cmd  *exec.Cmd
}

// need returns the redis-server path, or ends the test.
func need(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found: CI must install it (apt-get install redis-server)", name)
		}
		t.Skipf("%s not found (apt-get install redis-server)", name)
	}
	return p
}

// freePort returns a loopback port nothing listens on right now. The
// cluster bus uses port+10000, which must be free too.
func freePort(t testing.TB) int {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if port+10000 > 65535 {
			continue
		}
		if bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000)); err == nil {
			bus.Close()
			return port
		}
	}
	t.Fatal("no free port pair for redis-server")
	return 0
}

// Start runs a standalone redis-server with extra arguments (such as
// "--requirepass", "x") and stops it when the test ends.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	bin := need(t, "redis-server")
	port := freePort(t)
	s := &Server{t: t, Addr: "127.0.0.1:" + strconv.Itoa(port), dir: t.TempDir()}
	s.args = append([]string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir,
		"--protected-mode", "no", "--loglevel", "warning",
	}, extra...)
	s.args = append([]string{bin}, s.args...)
	s.start()
	t.Cleanup(s.Kill)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	s.cmd = exec.Command(s.args[0], s.args[1:]...)
	s.cmd.Dir = s.dir
	logf, err := os.Create(filepath.Join(s.dir, "redis-"+strconv.Itoa(int(time.Now().UnixNano()%1e6))+".log"))
	if err != nil {
		s.t.Fatal(err)
	}
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("starting redis-server: %v", err)
	}
	go func() { _ = s.cmd.Wait(); logf.Close() }()
	if err := waitPing(s.Addr, 10*time.Second); err != nil {
		s.t.Fatalf("redis-server on %s: %v", s.Addr, err)
	}
}

// Kill stops the server at once (SIGKILL), as a crash would.
func (s *Server) Kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		for range 100 { // until the port is closed
			c, err := net.DialTimeout("tcp", s.Addr, 50*time.Millisecond)
			if err != nil {
				break
			}
			c.Close()
			time.Sleep(20 * time.Millisecond)
		}
		s.cmd = nil
	}
}

// Restart starts a killed server again on the same address, empty.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	s.start()
}

// Do sends one command and returns its reply as text (arrays joined by
// newlines), for tests that look into Redis behind the store's back.
func (s *Server) Do(args ...string) (string, error) {
	return Do(s.Addr, args...)
}

// Do sends one command to addr and returns the reply as text.
func Do(addr string, args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	return readReply(bufio.NewReader(c))
}

// readReply reads one RESP2 reply.
func readReply(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("empty reply line")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", fmt.Errorf("redis: %s", line[1:])
	case '$':
		n, _ := strconv.Atoi(line[1:])
		if n < 0 {
			return "", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	case '*':
		n, _ := strconv.Atoi(line[1:])
		parts := make([]string, 0, max(n, 0))
		for range n {
			p, err := readReply(r)
			if err != nil {
				return "", err
			}
			parts = append(parts, p)
		}
		return strings.Join(parts, "\n"), nil
	}
	return "", fmt.Errorf("unexpected reply %q", line)
}

func waitPing(addr string, within time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for {
		if got, err := Do(addr, "PING"); err == nil && got == "PONG" {
			return nil
		} else if ctx.Err() != nil {
			return fmt.Errorf("no PONG within %v: %v", within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Cluster is a Redis Cluster of three masters and no replicas.
type Cluster struct {
	Nodes []*Server
}

// Addrs returns the nodes' addresses.
func (c *Cluster) Addrs() []string {
	var a []string
	for _, n := range c.Nodes {
		a = append(a, n.Addr)
	}
	return a
}

// Kill stops every node at once, as a crash of the whole cluster would.
func (c *Cluster) Kill() {
	for _, n := range c.Nodes {
		n.Kill()
	}
}

// Restart starts every killed node again on its address with its cluster
// configuration (nodes.conf survives; the data does not) and waits until
// the cluster is ok.
func (c *Cluster) Restart(t testing.TB) {
	t.Helper()
	for _, n := range c.Nodes {
		n.Kill()
		n.start()
	}
	c.waitOK(t)
}

// StartCluster starts three cluster-enabled servers and joins them with
// redis-cli --cluster create, then waits until the cluster is ok.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	cli := need(t, "redis-cli")
	c := &Cluster{}
	for range 3 {
		c.Nodes = append(c.Nodes, Start(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000"))
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.Command(cli, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.waitOK(t)
	return c
}

// waitOK waits until every node says cluster_state:ok.
func (c *Cluster) waitOK(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for _, n := range c.Nodes {
		for {
			info, err := n.Do("CLUSTER", "INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("cluster node %s not ok: %v %s", n.Addr, err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}
