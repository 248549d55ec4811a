//go:build unix

package caddymodule

import (
	"syscall"
	"time"
)

// processCPU is the CPU time (user + system) this process has used so far.
// The miss benchmarks report it per iteration: on a shared machine the
// wall time of a loopback round trip mostly measures other processes,
// while the CPU our process spends is what a miss costs the gateway.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
