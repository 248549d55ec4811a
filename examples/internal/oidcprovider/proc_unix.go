//go:build unix

package oidcprovider

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// setProcessGroup puts the server in a process group of its own, so that
// stopping it also stops anything it started.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// stopProcessGroup sends SIGTERM to the server's process group, waits up to
// grace for the server to exit, then sends SIGKILL.
func stopProcessGroup(cmd *exec.Cmd, exited <-chan struct{}, grace time.Duration) {
	pgid := cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(grace):
	}
	// Whatever is left of the group (or the server itself, if it ignored
	// SIGTERM) is killed.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-exited
}

// lockFile takes an exclusive advisory lock on path, creating it; the
// returned function releases it.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("npm install lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("npm install lock %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
