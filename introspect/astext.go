package introspect

import (
	"strconv"
	"unicode/utf8"
)

// asTextMax bounds how much AS-chosen text an error may quote: enough to
// recognise a media type or an alg, too little to carry a token.
const asTextMax = 32

// quoteASText renders text the AS chose (a media type, a JOSE alg, an
// error code, a malformed line) for an error message. Error messages reach
// Caddy's logs above DEBUG, which must hold no AS text an attacker
// controlling or impersonating the AS could use to forge log lines or
// smuggle a token into them: at most asTextMax bytes are kept, cut on a
// rune boundary, Go-quoted so that newlines, quotes and control bytes show
// as escapes, and followed by " (cut)" when cut (not "...": error
// messages never end with a period).
func quoteASText(s string) string {
	if len(s) <= asTextMax {
		return strconv.Quote(s)
	}
	cut := asTextMax
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + " (cut)"
}
