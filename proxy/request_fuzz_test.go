package proxy

import (
	"bufio"
	"net/http"
	"strings"
	"testing"

	"github.com/signet-proxy/signet/config"
	"github.com/signet-proxy/signet/signer"
)

// FuzzParseRequest feeds raw request heads through Go's parser and signet's: whatever
// parses must name a valid bucket and a key that cannot climb out of it upstream.
func FuzzParseRequest(f *testing.F) {
	for _, seed := range []string{
		"GET /alpha/key HTTP/1.1\r\nHost: localhost:9000\r\n\r\n",
		"GET /key HTTP/1.1\r\nHost: alpha.localhost:9000\r\n\r\n",
		"PUT /alpha/a%20b+c/%2e%2e/x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
		"GET //alpha HTTP/1.1\r\nHost: x.evil.example\r\n\r\n",
		"GET http://other/alpha/k HTTP/1.1\r\nHost: localhost\r\n\r\n",
		"GET /alpha/%ff HTTP/1.1\r\nHost: [::1]:9000\r\n\r\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		r, err := readRequest(raw)
		if err != nil {
			return
		}
		req, serr := parseRequest(r, []string{"localhost", "s3.example.com"})
		if serr != nil {
			if serr.Status < 400 || serr.Status > 499 || serr.Code == "" {
				t.Fatalf("bad refusal %+v", serr)
			}
			return
		}
		if req.bucket == "" {
			if req.key != "" {
				t.Fatalf("a key without a bucket: %q", req.key)
			}
			return
		}
		if err := config.CheckBucketName(req.bucket); err != nil {
			t.Fatalf("accepted bucket %q: %v", req.bucket, err)
		}
		if len(req.key) > maxKeyLen {
			t.Fatalf("accepted a %d-byte key", len(req.key))
		}
		p := signer.EscapePath("/" + req.bucket + "/" + req.key)
		for seg := range strings.SplitSeq(p, "/") {
			if seg == ".." || seg == "." {
				t.Fatalf("upstream path %q has a dot segment", p)
			}
		}
		if !strings.HasPrefix(p, "/"+req.bucket+"/") {
			t.Fatalf("upstream path %q leaves bucket %q", p, req.bucket)
		}
	})
}

func readRequest(raw string) (*http.Request, error) {
	return http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
}
