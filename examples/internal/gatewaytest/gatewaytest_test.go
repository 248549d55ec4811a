package gatewaytest

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
)

// TestRecorder: every request is recorded with its path, a copy of its
// headers and the status the handler answered (200 when it only wrote a
// body), and Since/CountMethod see them in order.
func TestRecorder(t *testing.T) {
	rec := &Recorder{}
	srv := httptest.NewServer(rec.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodDelete:
			w.WriteHeader(http.StatusNoContent)
		default:
			_, _ = w.Write([]byte("ok"))
		}
	})))
	defer srv.Close()

	resp, _ := Do(t, srv.Client(), http.MethodPost, srv.URL+"/mcp", "{}", "Authorization", "Bearer a", "Host", "example.test")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST: status %d", resp.StatusCode)
	}
	mark := rec.Count()
	Do(t, srv.Client(), http.MethodDelete, srv.URL+"/mcp", "", "Mcp-Session-Id", "s1")

	reqs := rec.Requests()
	if len(reqs) != 2 {
		t.Fatalf("recorded %d requests, want 2", len(reqs))
	}
	if r := reqs[0]; r.Method != http.MethodPost || r.Path != "/mcp" || r.Status != http.StatusOK || r.Header.Get("Authorization") != "Bearer a" {
		t.Errorf("first request = %+v", r)
	}
	if r := reqs[1]; r.Method != http.MethodDelete || r.Status != http.StatusNoContent || r.Header.Get("Mcp-Session-Id") != "s1" {
		t.Errorf("second request = %+v", r)
	}
	if got := rec.Since(mark); len(got) != 1 || got[0].Method != http.MethodDelete {
		t.Errorf("Since(%d) = %+v, want the DELETE", mark, got)
	}
	if got := rec.Since(99); len(got) != 0 {
		t.Errorf("Since past the end = %+v, want none", got)
	}
	if n := rec.CountMethod(http.MethodPost); n != 1 {
		t.Errorf("CountMethod(POST) = %d, want 1", n)
	}
}

func TestAudience(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want []string
	}{
		{"https://r", []string{"https://r"}},
		{[]any{"a", "b"}, []string{"a", "b"}},
		{nil, nil},
		{42.0, nil},
	} {
		if got := Audience(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("Audience(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
