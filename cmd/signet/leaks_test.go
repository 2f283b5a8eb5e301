package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestUpstreamErrorsEchoNoSignedMaterial: an upstream's SignatureDoesNotMatch echoes the
// canonical request, with the R2 session token (the credential itself) in it; the client
// gets the error code and message, and neither the echo nor the token.
func TestUpstreamErrorsEchoNoSignedMaterial(t *testing.T) {
	tokens := make(chan string, 10)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := r.Header.Get("X-Amz-Security-Token")
		tokens <- tok
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusForbidden)
		if r.Method == http.MethodHead {
			return
		}
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided.</Message><AWSAccessKeyId>parentkey</AWSAccessKeyId><StringToSign>AWS4-HMAC-SHA256
20261202T000000Z</StringToSign><SignatureProvided>%s</SignatureProvided><StringToSignBytes>41 57 53</StringToSignBytes><CanonicalRequest>GET
/b/k

host:x
x-amz-security-token:%s
</CanonicalRequest><CanonicalRequestBytes>47 45 54</CanonicalRequestBytes><RequestId>1</RequestId></Error>`, r.Header.Get("Authorization"), tok)
	}))
	t.Cleanup(upstream.Close)
	p := startSignet(t, "--config", writeConfig(t, fmt.Sprintf(`admin_listen: "off"
accounts:
  edge:
    r2_account_id: 0123456789abcdef0123456789abcdef
    endpoint: %s
    credentials:
      r2_temp_local: {parent_access_key_id: parentkey, parent_secret_access_key: parentsecret}
buckets:
  - {name: thumbs, account: edge}
`, upstream.URL)))
	resp, err := http.Get("http://" + p.addr + "/thumbs/k")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	tok := <-tokens
	if tok == "" {
		t.Fatal("the upstream got no session token: nothing to leak")
	}
	if resp.StatusCode != 403 || !strings.Contains(string(body), "<Code>SignatureDoesNotMatch</Code>") {
		t.Errorf("got %d %s, want the upstream's 403 SignatureDoesNotMatch", resp.StatusCode, body)
	}
	for _, leak := range []string{tok, "CanonicalRequest", "StringToSign", "SignatureProvided", "parentkey", "AWS4-HMAC-SHA256"} {
		if strings.Contains(string(body), leak) {
			t.Errorf("the client got %q: %s", leak, body)
		}
	}
}
