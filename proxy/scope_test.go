package proxy_test

import (
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPrefixScopedRoute: a route limited to prefixes refuses everything outside them
// before forwarding, and serves what is inside.
func TestPrefixScopedRoute(t *testing.T) {
	e := newEnv(t, "")
	e.mkBuckets(t, "alpha")
	put(t, e.s3, "alpha", "outside/secret", []byte("not for the scoped route"))
	h := newHandler(t, fmt.Sprintf(`
accounts:
  gw: {endpoint: %s, credentials: {access_key_id: %s, secret_access_key: %s}}
buckets:
  - {name: scoped, account: gw, upstream_bucket: alpha, prefixes: [inside/], objects: [manifest.json]}
  - {name: alpha, account: gw}
`, e.gw.Endpoint, e.gw.AccessKey, e.gw.SecretKey))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	deleteBody := func(keys ...string) string {
		var b strings.Builder
		b.WriteString("<Delete>")
		for _, k := range keys {
			b.WriteString("<Object><Key>" + k + "</Key></Object>")
		}
		return b.String() + "</Delete>"
	}
	tests := []struct {
		name, method, path, body string
		header                   map[string]string
		status                   int
	}{
		{"put inside", "PUT", "/scoped/inside/a", "in", nil, 200},
		{"put an allowed object", "PUT", "/scoped/manifest.json", "{}", nil, 200},
		{"get inside", "GET", "/scoped/inside/a", "", nil, 200},
		{"put outside", "PUT", "/scoped/outside/b", "out", nil, 403},
		{"get outside", "GET", "/scoped/outside/secret", "", nil, 403},
		{"list inside", "GET", "/scoped?list-type=2&prefix=inside/", "", nil, 200},
		{"list everything", "GET", "/scoped?list-type=2", "", nil, 403},
		{"list outside", "GET", "/scoped?list-type=2&prefix=outside/", "", nil, 403},
		{"list a shorter prefix", "GET", "/scoped?list-type=2&prefix=ins", "", nil, 403},
		{"head bucket", "HEAD", "/scoped", "", nil, 200},
		{"delete objects inside", "POST", "/scoped?delete", deleteBody("inside/zz"), nil, 200},
		{"delete objects reaching outside", "POST", "/scoped?delete", deleteBody("inside/zz", "outside/secret"), nil, 403},
		{"copy from outside", "PUT", "/scoped/inside/copy", "", map[string]string{"X-Amz-Copy-Source": "/scoped/outside/secret"}, 403},
		{"copy from inside", "PUT", "/scoped/inside/copy", "", map[string]string{"X-Amz-Copy-Source": "/scoped/inside/a"}, 200},
		{"delete the bucket", "DELETE", "/scoped", "", nil, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
			if tt.body == "" {
				req.Body = http.NoBody
			}
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			if tt.method == "POST" {
				sum := md5.Sum([]byte(tt.body))
				req.Header.Set("Content-MD5", base64.StdEncoding.EncodeToString(sum[:]))
			}
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status {
				b := readError(t, resp)
				t.Fatalf("%d %+v, want %d", resp.StatusCode, b, tt.status)
			}
			if tt.status == 403 {
				if e := readError(t, resp); e.Code != "AccessDenied" || !strings.Contains(e.Message, `limited to prefix "inside/", key "manifest.json"`) && !strings.Contains(e.Message, "copy source") {
					t.Errorf("%+v", e)
				}
			} else {
				resp.Body.Close()
			}
		})
	}
	if _, err := os.Stat(filepath.Join(e.gw.DataDir, "alpha", "outside", "b")); err == nil {
		t.Error("a write outside the prefixes reached the upstream")
	}
	if got := get(t, e.s3, "alpha", "outside/secret"); string(got) != "not for the scoped route" {
		t.Errorf("outside/secret became %q", got)
	}
}
