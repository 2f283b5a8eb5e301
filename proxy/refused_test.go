package proxy_test

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/signet-proxy/signet/internal/testenv"
)

// TestRefusedUploadGetsUpstreamAnswer: an upstream that refuses an upload from its headers
// answers before reading the body and then resets the connection (versitygw does, for a
// part of an upload that does not exist). The client must get that answer, never a 502 for
// the reset: SDKs retry a 502, and the real error would stay hidden.
func TestRefusedUploadGetsUpstreamAnswer(t *testing.T) {
	body := bytes.Repeat([]byte("x"), 16<<20)
	t.Run("http upstream", func(t *testing.T) { refusedUploads(t, newEnv(t, ""), body) })
	t.Run("https upstream", func(t *testing.T) { refusedUploads(t, newEnvOn(t, testenv.StartVersityGWTLS(t), ""), body) })
}

func refusedUploads(t *testing.T, e *env, body []byte) {
	t.Helper()
	e.mkBuckets(t, "alpha")
	for i := range 30 {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, e.signet.URL+"/alpha/refused?partNumber=1&uploadId=no-such-upload", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		er := readError(t, resp)
		if resp.StatusCode != http.StatusNotFound || er.Code != "NoSuchUpload" {
			t.Errorf("try %d: %d %+v, want the upstream's 404 NoSuchUpload", i, resp.StatusCode, er)
		}
	}
}
