package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestBrowsersCannotDriveSignet: a page on another site can make the user's browser send
// requests to a loopback signet. Those are refused (nothing reaches the upstream) unless
// the page's origin is in allowed_origins, whose preflights signet answers itself; and no
// object is ever served in a way a browser would run on signet's origin. The requests
// carry what browsers send (Origin, Sec-Fetch-Site, Access-Control-Request-*).
func TestBrowsersCannotDriveSignet(t *testing.T) {
	var up upstreamLog
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A bucket CORS rule allowing every origin, as the attack needed.
		w.Header().Set("Access-Control-Allow-Origin", "*")
		up.handler(w, r)
	}))
	t.Cleanup(upstream.Close)
	p := startSignet(t, "--config", writeConfig(t, fmt.Sprintf(`admin_listen: "off"
allowed_origins: ["https://app.example.com"]
accounts:
  up: {endpoint: %s, credentials: {access_key_id: a, secret_access_key: b}}
buckets:
  - {name: alpha, account: up}
`, upstream.URL)))
	base := "http://" + p.addr
	tests := []struct {
		name, method, path string
		header             map[string]string
		status             int
		reaches            bool   // the upstream sees it
		acao               string // Access-Control-Allow-Origin wanted
	}{
		{name: "fetch from another site", method: "GET", path: "/alpha/private", header: map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors"}, status: 403},
		{name: "no-cors load from another site", method: "GET", path: "/alpha/private", header: map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"}, status: 403},
		{name: "load from another port of localhost", method: "GET", path: "/alpha/private", header: map[string]string{"Sec-Fetch-Site": "same-site"}, status: 403},
		{name: "simple POST from another site", method: "POST", path: "/alpha/k?uploads", header: map[string]string{"Origin": "https://evil.example", "Content-Type": "text/plain"}, status: 403},
		{name: "opaque origin", method: "GET", path: "/alpha/private", header: map[string]string{"Origin": "null"}, status: 403},
		{name: "preflight from another site", method: "OPTIONS", path: "/alpha/k", header: map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "PUT"}, status: 403},
		{name: "preflight from an allowed origin", method: "OPTIONS", path: "/alpha/k", header: map[string]string{"Origin": "https://app.example.com", "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "content-type,x-amz-meta-a"}, status: 200, acao: "https://app.example.com"},
		{name: "fetch from an allowed origin", method: "GET", path: "/alpha/k", header: map[string]string{"Origin": "https://app.example.com", "Sec-Fetch-Site": "cross-site"}, status: 200, reaches: true, acao: "https://app.example.com"},
		{name: "a page signet served", method: "POST", path: "/alpha/k?uploads", header: map[string]string{"Origin": "http://" + p.addr, "Sec-Fetch-Site": "same-origin"}, status: 200, reaches: true},
		{name: "a typed address", method: "GET", path: "/alpha/k", header: map[string]string{"Sec-Fetch-Site": "none"}, status: 200, reaches: true},
		{name: "an app, not a browser", method: "GET", path: "/alpha/k", status: 200, reaches: true},
		{name: "served as HTML", method: "GET", path: "/alpha/k?response-content-type=text/html", status: 400},
		{name: "served as XHTML", method: "GET", path: "/alpha/k?response-content-type=application%2Fxhtml%2Bxml", status: 400},
		{name: "served as SVG", method: "GET", path: "/alpha/k?response-content-type=image/svg%2Bxml", status: 400},
		{name: "served as script", method: "GET", path: "/alpha/k?response-content-type=text/javascript;charset=utf-8", status: 400},
		{name: "served as XML", method: "GET", path: "/alpha/k?response-content-type=text/xml", status: 400},
		{name: "an unreadable type", method: "GET", path: "/alpha/k?response-content-type=%3B%3B", status: 400},
		{name: "served as text", method: "GET", path: "/alpha/k?response-content-type=text/plain", status: 200, reaches: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(up.requests())
			req, _ := http.NewRequestWithContext(t.Context(), tt.method, base+tt.path, nil)
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("got %d %s, want %d", resp.StatusCode, body, tt.status)
			}
			if got := len(up.requests()) > before; got != tt.reaches {
				t.Errorf("reached the upstream: %v, want %v", got, tt.reaches)
			}
			if got := resp.Header.Values("Access-Control-Allow-Origin"); strings.Join(got, ",") != tt.acao {
				t.Errorf("Access-Control-Allow-Origin %q, want %q", got, tt.acao)
			}
			if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Content-Security-Policy") != "sandbox" {
				t.Errorf("answer without nosniff and sandbox: %v", resp.Header)
			}
			if tt.method == "OPTIONS" && tt.status == 200 && (resp.Header.Get("Access-Control-Allow-Methods") == "" || resp.Header.Get("Access-Control-Allow-Headers") != "content-type,x-amz-meta-a") {
				t.Errorf("preflight answer: %v", resp.Header)
			}
		})
	}
}
