package caddymodule

import (
	"math"
	runtimemetrics "runtime/metrics"
)

// liveBytesFor turns max_size, the memory the cache may make the process
// hold, into the bound on the bytes its entries hold.
//
// Go's collector lets the heap grow by GOGC percent beyond the live data
// before it collects, and the process keeps that memory: every byte the
// cache keeps live costs the process 1 + GOGC/100 bytes at its peak. So
// with the default GOGC=100 the entries get half of max_size, and the
// process grows by about max_size, not twice that, when the cache fills.
// With GOGC=off only a memory limit (GOMEMLIMIT) governs the heap, and the
// entries get all of max_size.
func liveBytesFor(maxSize int64) int64 {
	gogc := gcPercent()
	if gogc <= 0 {
		return maxSize
	}
	// In float64: max_size times GOGC may not fit an int64.
	return max(1, int64(float64(maxSize)*100/float64(100+gogc)))
}

// gcPercent returns the collector's GOGC setting, or -1 when collection
// is off. runtime/metrics reads it without side effects (SetGCPercent
// would change it to read it).
func gcPercent() int64 {
	s := []runtimemetrics.Sample{{Name: "/gc/gogc:percent"}}
	runtimemetrics.Read(s)
	if s[0].Value.Kind() != runtimemetrics.KindUint64 {
		return 100
	}
	v := s[0].Value.Uint64()
	if v > math.MaxInt32 {
		return -1 // GOGC=off is -1, reported as a uint64
	}
	return int64(v)
}
