//go:build unix

package procutil

import (
	"os"
	"os/exec"
	"syscall"
	"time"
)

// SetProcessGroup puts the process cmd will start in a process group of its
// own (pgid = its pid), so KillGroup and StopGroup also reach any child it
// starts. Call it before cmd.Start.
func SetProcessGroup(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
}

// SetParentDeathSignal makes the kernel kill the process cmd will start
// when the test binary dies without running its cleanups (e.g. go test's
// timeout panic). Only Linux has it; elsewhere it does nothing. Call it
// before cmd.Start.
func SetParentDeathSignal(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	setParentDeathSignal(cmd.SysProcAttr)
}

// KillGroup sends SIGKILL to the process group of a started cmd (see
// SetProcessGroup), or kills the process alone when that fails. It does not
// wait for the process.
func KillGroup(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	// Negative pid: the whole process group (pgid == the process's pid).
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
		cmd.Process.Kill()
	}
}

// StopGroup sends SIGTERM to the process group of a started cmd (see
// SetProcessGroup), waits up to grace for the process to exit (exited is
// closed once cmd.Wait has returned), then sends SIGKILL to whatever is
// left of the group and waits for exited.
func StopGroup(cmd *exec.Cmd, exited <-chan struct{}, grace time.Duration) {
	pgid := cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(grace):
	}
	// Whatever is left of the group (or the process itself, if it ignored
	// SIGTERM) is killed.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-exited
}

// LockFile takes an exclusive advisory lock (flock) on path, creating the
// file with mode perm if needed, and blocks until the lock is free. The
// returned function releases it.
func LockFile(path string, perm os.FileMode) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, perm)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
