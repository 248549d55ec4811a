// Package procutil holds the process and port handling shared by the test
// launchers of real servers (examples/internal/hydra,
// examples/internal/oidcprovider) and the gateway harness
// (examples/internal/gatewaytest): free loopback ports, a process group per
// server so stopping it stops its children too, and a cross-process file lock
// for one-time setup steps (builds, npm installs) that parallel test binaries
// must not run twice at once.
//
// On systems without Unix process groups the group functions act on the
// process alone and LockFile does nothing.
package procutil

import (
	"fmt"
	"net"
	"sync"
)

// handedOut remembers every port FreeLoopbackPorts has returned in this
// process. The kernel may hand a just-released port out again at once, so
// two calls could otherwise return the same port and two servers of one
// test would collide on it (CI once saw a gateway and its metrics site
// adapted onto one address).
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// FreeLoopbackPorts returns n distinct TCP ports on 127.0.0.1 that were free
// a moment ago and were not returned before in this process. They are picked
// by listening on port 0 and then released, so a server started on them may
// still lose a race with another process: callers retry or fail.
func FreeLoopbackPorts(n int) ([]int, error) {
	handedOut.Lock()
	defer handedOut.Unlock()
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	// Every listener stays open until the end, so the kernel never offers a
	// port twice within one call; skipped ports bound the loop.
	for tries := 0; len(ports) < n; tries++ {
		if tries > n+1000 {
			return nil, fmt.Errorf("procutil: no unused loopback port after %d tries", tries)
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		port := l.Addr().(*net.TCPAddr).Port
		if handedOut.ports[port] {
			continue
		}
		handedOut.ports[port] = true
		ports = append(ports, port)
	}
	return ports, nil
}
