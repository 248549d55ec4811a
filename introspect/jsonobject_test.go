package introspect

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// The hand-written JSON paths must agree exactly with encoding/json, which
// they replace for speed: these tests compare them with it on a table of
// edge cases, and the fuzz targets on arbitrary input.

var jsonObjectCases = []string{
	`{}`, ` { } `, "\t{\n}\r\n", `{"a":1}`, `{"a":1,"a":2}`, `{"a":"x","b":[1,{"c":"]}"}],"d":{"e":null}}`,
	`{"a" : "b" , "c" : true }`, `{"a":-1.5e+3}`, `{"":""}`, `{"a\"b":1}`, `{"\u00e9":1}`,
	`{"\ud800":1}`, `{"\ud83d\ude00":1}`, "{\"\xff\":1}", "{\"é\":1}", `{"a":"\\"}`, `{"a":"x\\\""}`,
	`{"k":[]}`, `{"k":[[[]]]}`, `{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11,"l":12,"m":13,"n":14,"o":15,"p":16,"q":17,"r":18}`,
	// Rejected: not an object, null, trailing data, bad syntax.
	``, ` `, `null`, ` null `, `[]`, `[{}]`, `"s"`, `1`, `true`, `{}{}`, `{} x`, `{`, `{"a"}`, `{"a":}`,
	`{"a":1,}`, `{'a':1}`, `{"a":01}`, "{\"a\x01\":1}", `{"a":1}]`, `{a:1}`,
}

// checkParseJSONObject compares parseJSONObject with json.Unmarshal into a
// map[string]json.RawMessage.
func checkParseJSONObject(t *testing.T, in []byte) {
	t.Helper()
	orig := bytes.Clone(in)
	got, gotErr := parseJSONObject(in)
	var want map[string]json.RawMessage
	wantErr := json.Unmarshal(in, &want)
	if wantErr == nil && want == nil {
		wantErr = errNotJSONObject // the literal null
	}
	if !bytes.Equal(in, orig) {
		t.Fatalf("parseJSONObject(%q) modified its input", orig)
	}
	if (gotErr != nil) != (wantErr != nil) {
		t.Fatalf("parseJSONObject(%q): error %v, encoding/json: %v", in, gotErr, wantErr)
	}
	if gotErr != nil {
		if got != nil {
			t.Fatalf("parseJSONObject(%q) = %v with error %v", in, got, gotErr)
		}
		return
	}
	if got == nil {
		t.Fatalf("parseJSONObject(%q) = nil map", in)
	}
	if len(got) != len(want) {
		t.Fatalf("parseJSONObject(%q) has %d members, encoding/json %d", in, len(got), len(want))
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Fatalf("parseJSONObject(%q) lacks key %q", in, k)
		}
		// encoding/json keeps a value's exact bytes; so must we.
		if !bytes.Equal(g, w) {
			t.Fatalf("parseJSONObject(%q)[%q] = %q, encoding/json %q", in, k, g, w)
		}
		if cap(g) != len(g) {
			t.Fatalf("parseJSONObject(%q)[%q] has spare capacity: an append would write into the input", in, k)
		}
	}
}

func TestParseJSONObjectMatchesEncodingJSON(t *testing.T) {
	for _, c := range jsonObjectCases {
		checkParseJSONObject(t, []byte(c))
	}
}

func FuzzParseJSONObject(f *testing.F) {
	for _, c := range jsonObjectCases {
		f.Add([]byte(c))
	}
	f.Fuzz(checkParseJSONObject)
}

var jsonStringCases = []string{
	`""`, `"a"`, `"alice"`, `"é"`, "\"\xff\"", "\"a\x01\"", `"a\"b"`, `"\u0041"`, `"\ud800"`, `"a"b"`, `"`,
	`null`, `1`, `true`, `[]`, `{}`, `"a" `, ` "a"`, `"a"x`, `'a'`,
}

var jsonStringArrayCases = []string{
	`[]`, `[ ]`, `["a"]`, `["a","b"]`, `[ "a" , "b" ]`, "[\n\"a\"\t]", `["é"]`, "[\"\xff\"]", `["a\"b"]`, `["\u0041"]`,
	`[null]`, `["a",null]`, `[1]`, `["a",]`, `[,"a"]`, `["a""b"]`, `["a"`, `[`, `]`, `["a"] `, `["a"]x`, `["a"],`,
	`[["a"]]`, `null`, `"a"`, `{}`, "[\"a\x01\"]", `["a,b"]`, `["]"]`,
}

// checkUnmarshalString compares unmarshalString and unmarshalStrings with
// json.Unmarshal.
func checkUnmarshalString(t *testing.T, in []byte) {
	t.Helper()
	s, ws := "unset", "unset"
	err := unmarshalString(in, &s)
	wantErr := json.Unmarshal(in, &ws)
	if (err != nil) != (wantErr != nil) || s != ws {
		t.Fatalf("unmarshalString(%q) = %q, %v; encoding/json %q, %v", in, s, err, ws, wantErr)
	}

	list, wlist := []string{"unset"}, []string{"unset"}
	err = unmarshalStrings(in, &list)
	wantErr = json.Unmarshal(in, &wlist)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("unmarshalStrings(%q): error %v, encoding/json: %v", in, err, wantErr)
	}
	if err == nil && (!reflect.DeepEqual(list, wlist) || (list == nil) != (wlist == nil)) {
		t.Fatalf("unmarshalStrings(%q) = %#v, encoding/json %#v", in, list, wlist)
	}
}

func TestUnmarshalStringMatchesEncodingJSON(t *testing.T) {
	for _, c := range append(append([]string{}, jsonStringCases...), jsonStringArrayCases...) {
		checkUnmarshalString(t, []byte(c))
	}
}

func FuzzUnmarshalString(f *testing.F) {
	for _, c := range append(append([]string{}, jsonStringCases...), jsonStringArrayCases...) {
		f.Add([]byte(c))
	}
	f.Fuzz(checkUnmarshalString)
}
