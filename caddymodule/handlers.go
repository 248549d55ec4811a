package caddymodule

import "sync"

// liveHandlers are the provisioned handlers of this process, old and new
// config alike during a reload, so that a purge reaches every cache.
var liveHandlers = struct {
	sync.Mutex
	m map[*Handler]struct{}
}{m: map[*Handler]struct{}{}}

func registerHandler(h *Handler) {
	liveHandlers.Lock()
	defer liveHandlers.Unlock()
	liveHandlers.m[h] = struct{}{}
}

func unregisterHandler(h *Handler) {
	liveHandlers.Lock()
	defer liveHandlers.Unlock()
	delete(liveHandlers.m, h)
}

// handlersNow returns the live handlers.
func handlersNow() []*Handler {
	liveHandlers.Lock()
	defer liveHandlers.Unlock()
	hs := make([]*Handler, 0, len(liveHandlers.m))
	for h := range liveHandlers.m {
		hs = append(hs, h)
	}
	return hs
}
