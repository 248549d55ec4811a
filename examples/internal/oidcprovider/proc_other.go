//go:build !unix

package oidcprovider

import (
	"os/exec"
	"time"
)

func setProcessGroup(*exec.Cmd) {}

// stopProcessGroup kills the server; without process groups, children it
// started (it starts none) would survive.
func stopProcessGroup(cmd *exec.Cmd, exited <-chan struct{}, _ time.Duration) {
	_ = cmd.Process.Kill()
	<-exited
}

// lockFile does nothing: parallel installs are only guarded within a process.
func lockFile(string) (func(), error) { return func() {}, nil }
