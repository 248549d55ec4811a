package mcprpc

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzValid checks valid against encoding/json.Valid on everything within
// maxDepth.
func FuzzValid(f *testing.F) {
	for _, s := range []string{
		`{}`, `[]`, `""`, `"a\"b\\"`, `"\u00e9\n"`, `"\x"`, `"\u12"`, "\"\x01\"", `0`, `-0.5e+10`, `01`, `1.`, `.5`, `-`,
		`{"a":[1,2,{"b":null}],"c":true,"d":false}`, `{"a" 1}`, `{"a":1,}`, `[1,]`, ` [ 1 , 2 ] `, `nul`, `truex`, `{"a":1}{}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}`, "\"\xff\xfe\"", `1e`, `1E+`, `[` + strings.Repeat(`[`, 10) + `]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if depth(b) > maxDepth {
			return
		}
		if got, want := valid(b), json.Valid(b); got != want {
			t.Fatalf("valid(%q) = %v, encoding/json.Valid = %v", b, got, want)
		}
	})
}

// depth is an upper bound of b's nesting (it counts brackets in strings
// too).
func depth(b []byte) int {
	d, most := 0, 0
	for _, c := range b {
		switch c {
		case '{', '[':
			d++
			most = max(most, d)
		case '}', ']':
			d--
		}
	}
	return most
}

func TestValidDepth(t *testing.T) {
	deep := strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1)
	if valid([]byte(deep)) {
		t.Errorf("nesting of %d accepted, limit %d", maxDepth+1, maxDepth)
	}
	ok := strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth)
	if !valid([]byte(ok)) {
		t.Errorf("nesting of %d refused", maxDepth)
	}
	if valid([]byte(strings.Repeat("[", 1<<20))) {
		t.Error("1 MiB of '[' accepted")
	}
}
