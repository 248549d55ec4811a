package procutil

import (
	"path/filepath"
	"testing"
)

func TestFreeLoopbackPortsAreDistinct(t *testing.T) {
	ports, err := FreeLoopbackPorts(3)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if p <= 0 || seen[p] {
			t.Fatalf("ports %v: want 3 distinct positive ports", ports)
		}
		seen[p] = true
	}
}

// Separate calls must not repeat a port either: the kernel may offer a port
// again as soon as it is released, and two servers of one test would then
// collide on it.
func TestFreeLoopbackPortsNeverRepeatAcrossCalls(t *testing.T) {
	seen := map[int]bool{}
	for i := 0; i < 200; i++ {
		ports, err := FreeLoopbackPorts(1)
		if err != nil {
			t.Fatal(err)
		}
		if seen[ports[0]] {
			t.Fatalf("call %d returned port %d again", i, ports[0])
		}
		seen[ports[0]] = true
	}
}

func TestLockFileCanBeRetaken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	for i := 0; i < 2; i++ {
		unlock, err := LockFile(path, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		unlock()
	}
}
