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

import "net"

// FreeLoopbackPorts returns n distinct TCP ports on 127.0.0.1 that were free
// a moment ago. They are picked by listening on port 0 and then released, so
// a server started on them may still lose a race: callers retry or fail.
func FreeLoopbackPorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
