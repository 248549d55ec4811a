package caddymodule

import "strings"

// dpopChallenges is how this route's challenges advertise DPoP; nil
// without dpop.
func (h *Handler) dpopChallenges() *dpopChallenges {
	if h.DPoP == nil {
		return nil
	}
	return &dpopChallenges{algs: strings.Join(h.dpopAlgorithms(), " "), required: h.DPoP.Required}
}

// defaultDPoPAlgorithms are accepted when dpop names none: the
// asymmetric algorithms MCP clients and ASes use.
var defaultDPoPAlgorithms = []string{"ES256", "EdDSA", "PS256"}

// dpopAlgorithms is the configured allow-list or the default.
func (h *Handler) dpopAlgorithms() []string {
	if len(h.DPoP.Algorithms) > 0 {
		return h.DPoP.Algorithms
	}
	return defaultDPoPAlgorithms
}
