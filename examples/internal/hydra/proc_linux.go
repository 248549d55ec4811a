package hydra

import "syscall"

// setParentDeathSignal kills Hydra if the test binary dies without running
// its cleanups (e.g. go test's timeout panic).
func setParentDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
