//go:build !unix

package procutil

import (
	"os"
	"os/exec"
	"time"
)

// SetProcessGroup does nothing: there are no Unix process groups here.
func SetProcessGroup(*exec.Cmd) {}

// SetParentDeathSignal does nothing: only Linux has it.
func SetParentDeathSignal(*exec.Cmd) {}

// KillGroup kills the process of a started cmd; without process groups,
// children it started would survive.
func KillGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		cmd.Process.Kill()
	}
}

// StopGroup kills the process of a started cmd and waits for exited (closed
// once cmd.Wait has returned); there is no graceful stop here.
func StopGroup(cmd *exec.Cmd, exited <-chan struct{}, _ time.Duration) {
	_ = cmd.Process.Kill()
	<-exited
}

// LockFile does nothing: one-time setup is only guarded within a process.
func LockFile(string, os.FileMode) (func(), error) { return func() {}, nil }
