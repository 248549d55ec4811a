package mcprpc

import (
	"encoding/json"
	"testing"
)

// FuzzClassify checks the classifier against encoding/json, the decoder
// many MCP servers use: whenever Classify accepts a body, the upstream must
// read the same method and the same params.name and params.uri (Go's
// decoder matches keys case-insensitively and lets the last duplicate win,
// which is why Classify refuses both).
func FuzzClassify(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_weather"}}`,
		`{"jsonrpc":"2.0","id":"a","method":"resources/read","params":{"uri":"file:///x"}}`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`{"jsonrpc":"2.0","id":1,"result":{}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","Method":"x"}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools\/call","params":{"n\u0061me":"a"}}`,
		`[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"name":"b"}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := Classify(body)
		if err != nil {
			return
		}
		var ref struct {
			JSONRPC string          `json:"jsonrpc"`
			Method  *string         `json:"method"`
			Params  json.RawMessage `json:"params"`
		}
		if err := json.Unmarshal(body, &ref); err != nil {
			t.Fatalf("Classify accepted what encoding/json refuses: %v", err)
		}
		method := ""
		if ref.Method != nil {
			method = *ref.Method
		}
		if ref.JSONRPC != "2.0" || method != m.Method {
			t.Fatalf("encoding/json reads jsonrpc %q method %q; Classify read method %q", ref.JSONRPC, method, m.Method)
		}
		var params struct {
			Name *string `json:"name"`
			URI  *string `json:"uri"`
		}
		if len(ref.Params) > 0 && ref.Params[0] == '{' && m.Kind != Response {
			if err := json.Unmarshal(ref.Params, &params); err == nil {
				if (params.Name != nil) != m.HasName || (params.Name != nil && *params.Name != m.Name) {
					t.Fatalf("params.name: encoding/json %v, Classify %q (has %v)", params.Name, m.Name, m.HasName)
				}
				if (params.URI != nil) != m.HasURI || (params.URI != nil && *params.URI != m.URI) {
					t.Fatalf("params.uri: encoding/json %v, Classify %q (has %v)", params.URI, m.URI, m.HasURI)
				}
			}
		}
	})
}
