package mcprpc

import (
	"errors"
	"testing"
)

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		body string
		want Message
	}{
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_weather","arguments":{"city":"Oslo"}}}`,
			Message{Kind: Request, Method: "tools/call", Name: "get_weather", HasName: true, ID: []byte("1")}},
		{` { "method" : "resources/read" , "params" : { "uri" : "file:///private/a.txt" } , "id" : "r-1", "jsonrpc" : "2.0" } `,
			Message{Kind: Request, Method: "resources/read", URI: "file:///private/a.txt", HasURI: true, ID: []byte(`"r-1"`)}},
		{`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
			Message{Kind: Notification, Method: "notifications/initialized", ID: []byte("null")}},
		{`{"jsonrpc":"2.0","id":7,"result":{}}`, Message{Kind: Response, ID: []byte("7")}},
		{`{"jsonrpc":"2.0","id":null,"error":{"code":-1,"message":"x"}}`, Message{Kind: Response, ID: []byte("null")}},
		// Escapes are decoded, as the upstream's decoder will.
		{`{"jsonrpc":"2.0","id":2,"method":"tools\/call","params":{"n\u0061me":"del\u00e9te"}}`,
			Message{Kind: Request, Method: "tools/call", Name: "deléte", HasName: true, ID: []byte("2")}},
		// Other members, nested objects and arrays are skipped.
		{`{"jsonrpc":"2.0","id":3,"x":[{"method":"no"},"}"],"method":"prompts/get","params":{"arguments":{"name":"no"},"name":"p1"}}`,
			Message{Kind: Request, Method: "prompts/get", Name: "p1", HasName: true, ID: []byte("3")}},
		{`{"jsonrpc":"2.0","id":4,"method":"tools/list","params":[]}`, Message{Kind: Request, Method: "tools/list", ID: []byte("4")}},
	} {
		got, err := Classify([]byte(c.body))
		if err != nil {
			t.Errorf("%s: %v", c.body, err)
			continue
		}
		if got.Kind != c.want.Kind || got.Method != c.want.Method || got.Name != c.want.Name || got.HasName != c.want.HasName ||
			got.URI != c.want.URI || got.HasURI != c.want.HasURI || string(got.ID) != string(c.want.ID) {
			t.Errorf("%s:\n got %+v (id %s)\nwant %+v (id %s)", c.body, got, got.ID, c.want, c.want.ID)
		}
	}
}

func TestClassifyRefuses(t *testing.T) {
	for _, c := range []struct {
		body string
		want error
	}{
		{``, ErrNotJSON},
		{`{"jsonrpc":"2.0",`, ErrNotJSON},
		{`null`, ErrNotObject},
		{`"tools/call"`, ErrNotObject},
		{`[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]`, ErrBatch},
		{`{"id":1,"method":"tools/list"}`, ErrVersion},
		{`{"jsonrpc":"1.0","id":1,"method":"tools/list"}`, ErrVersion},
		{`{"jsonrpc":2.0,"id":1,"method":"tools/list"}`, ErrVersion},
		{`{"jsonrpc":"2.0","id":1,"method":7}`, ErrMethod},
		{`{"jsonrpc":"2.0","id":1,"method":null}`, ErrMethod},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","method":"tools/list"}`, ErrAmbiguous},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/list","Method":"tools/call"}`, ErrAmbiguous},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/list","METHOD":"tools/call"}`, ErrAmbiguous},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","name":"b"}}`, ErrAmbiguous},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/list","paramſ":{"name":"a"}}`, ErrAmbiguous},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","Name":"b"}}`, ErrAmbiguous},
		{`{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"a","URI":"b"}}`, ErrAmbiguous},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":["a"]}}`, ErrParams},
		{`{"jsonrpc":"2.0","id":true,"method":"tools/list"}`, ErrID},
		{`{"jsonrpc":"2.0","id":{},"method":"tools/list"}`, ErrID},
		{`{"jsonrpc":"2.0"}`, ErrShape},
		{`{"jsonrpc":"2.0","id":1}`, ErrShape},
		{`{"jsonrpc":"2.0","id":1,"method":"x","result":{}}`, ErrShape},
		{`{"jsonrpc":"2.0","id":1,"result":{},"error":{}}`, ErrShape},
		{`{"jsonrpc":"2.0","result":{}}`, ErrShape},
	} {
		if _, err := Classify([]byte(c.body)); !errors.Is(err, c.want) {
			t.Errorf("%s: error %v, want %v", c.body, err, c.want)
		}
	}
}

func TestClassifyAllocs(t *testing.T) {
	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_weather","arguments":{"city":"Oslo","days":[1,2,3]}}}`)
	if n := testing.AllocsPerRun(100, func() { _, _ = Classify(body) }); n != 0 {
		t.Errorf("Classify allocates %v times for a body without escapes, want 0", n)
	}
}

func TestPattern(t *testing.T) {
	for _, c := range []struct {
		pattern, name string
		want          bool
	}{
		{"get_weather", "get_weather", true},
		{"get_weather", "get_weather2", false},
		{"delete_*", "delete_file", true},
		{"delete_*", "delete_", true},
		{"delete_*", "undelete_file", false},
		{"file:///private/*", "file:///private/a/b.txt", true},
		{"file:///private/*", "file:///public/a.txt", false},
		{"*", "", true},
		{"*_admin_*", "x_admin_y", true},
		{"*_admin_*", "_admin_", true},
		{"a*b*c", "abc", true},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "acb", false},
		{"a*a", "a", false},
	} {
		p, err := ParsePattern(c.pattern)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Match(c.name); got != c.want {
			t.Errorf("%q matches %q = %v, want %v", c.pattern, c.name, got, c.want)
		}
	}
	for _, bad := range []string{"", "get_?", "[a]*", `a\*`, "a\nb"} {
		if _, err := ParsePattern(bad); err == nil {
			t.Errorf("ParsePattern(%q) accepted it", bad)
		}
	}
}

func TestCheckHeaders(t *testing.T) {
	call, _ := Classify([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_wéather"}}`))
	read, _ := Classify([]byte(`{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///a"}}`))
	list, _ := Classify([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	resp, _ := Classify([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`))
	const sentinel = "=?base64?Z2V0X3fDqWF0aGVy?=" // get_wéather
	for _, c := range []struct {
		name string
		m    *Message
		h    Headers
		ok   bool
	}{
		{"no headers, old client", &call, Headers{ProtocolVersion: "2025-06-18"}, true},
		{"no headers, no version", &call, Headers{}, true},
		{"matching headers", &call, Headers{Method: "tools/call", HasMethod: true, Name: sentinel, HasName: true, ProtocolVersion: "2026-07-28"}, true},
		{"plain name that matches", &read, Headers{Method: "resources/read", HasMethod: true, Name: "file:///a", HasName: true}, true},
		{"method mismatch", &call, Headers{Method: "tools/list", HasMethod: true}, false},
		{"name mismatch", &call, Headers{Method: "tools/call", HasMethod: true, Name: "other", HasName: true}, false},
		{"sentinel name mismatch", &read, Headers{Name: sentinel, HasName: true}, false},
		{"bad sentinel", &call, Headers{Name: "=?base64?***?=", HasName: true}, false},
		{"unterminated sentinel", &call, Headers{Name: "=?base64?Z2V0", HasName: true}, false},
		{"missing method at 2026-07-28", &list, Headers{ProtocolVersion: "2026-07-28"}, false},
		{"missing name at 2026-07-28", &call, Headers{Method: "tools/call", HasMethod: true, ProtocolVersion: "2026-07-28"}, false},
		{"missing name at a later version", &call, Headers{Method: "tools/call", HasMethod: true, ProtocolVersion: "2027-01-01"}, false},
		{"tools/list needs no name", &list, Headers{Method: "tools/list", HasMethod: true, ProtocolVersion: "2026-07-28"}, true},
		{"name on another method is ignored", &list, Headers{Method: "tools/list", HasMethod: true, Name: "whatever", HasName: true}, true},
		{"a response needs no headers", &resp, Headers{ProtocolVersion: "2026-07-28"}, true},
		{"a response with Mcp-Method", &resp, Headers{Method: "tools/call", HasMethod: true}, false},
		{"a version that is not a date", &call, Headers{ProtocolVersion: "next"}, true},
	} {
		err := CheckHeaders(c.m, c.h)
		if (err == nil) != c.ok {
			t.Errorf("%s: %v, want ok=%v", c.name, err, c.ok)
		}
	}
}
