//go:build unix && !linux

package hydra

import "syscall"

func setParentDeathSignal(*syscall.SysProcAttr) {}
