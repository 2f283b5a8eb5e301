package signer

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

func TestEscapePath(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"unreserved stays", "/b/AZaz09-_.~/x", "/b/AZaz09-_.~/x"},
		{"space and plus", "/b/a b+c", "/b/a%20b%2Bc"},
		{"characters Go leaves alone", "/b/x:y@z=1&$,;", "/b/x%3Ay%40z%3D1%26%24%2C%3B"},
		{"percent", "/b/100%", "/b/100%25"},
		{"double slash kept", "/b/a//b", "/b/a//b"},
		{"utf-8 bytes", "/b/é", "/b/%C3%A9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := EscapePath(tt.in); got != tt.want {
				t.Errorf("EscapePath(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestStrip(t *testing.T) {
	h := http.Header{
		"Authorization":        {"AWS4-HMAC-SHA256 Credential=dummy/..."},
		"X-Amz-Date":           {"20260101T000000Z"},
		"X-Amz-Security-Token": {"client-token"},
		"X-Amz-Content-Sha256": {"abc"},
		"X-Amz-Meta-Colour":    {"blue"},
		"Content-Type":         {"text/plain"},
	}
	q := url.Values{"X-Amz-Signature": {"s"}, "X-Amz-Credential": {"c"}, "Signature": {"v2"}, "AWSAccessKeyId": {"k"}, "Expires": {"1"}, "versionId": {"v1"}, "uploads": {""}}
	if !Strip(h, q) {
		t.Error("Strip did not report the changed query")
	}
	var keys []string
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"Content-Type", "x-amz-meta-colour"}; !slices.Equal(keys, want) {
		t.Errorf("headers left: %v, want %v", keys, want)
	}
	if got := q.Encode(); got != "uploads=&versionId=v1" {
		t.Errorf("query left: %s", got)
	}
}

// TestNewSecretNeverMeetsACachedKey: R2 locally minted credentials keep the access key id
// and change the secret; the SDK's signer would reuse the old derived key.
func TestNewSecretNeverMeetsACachedKey(t *testing.T) {
	s := NewSigner()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	sign := func(secret string) string {
		req, _ := http.NewRequest(http.MethodGet, "https://acct.r2.cloudflarestorage.com/b/k", nil)
		if err := s.Sign(t.Context(), req, aws.Credentials{AccessKeyID: "same-id", SecretAccessKey: secret}, "auto", UnsignedPayload, now); err != nil {
			t.Fatal(err)
		}
		return req.Header.Get("Authorization")
	}
	a, b, a2 := sign("secret-one"), sign("secret-two"), sign("secret-one")
	if a == b {
		t.Error("two secrets gave the same signature")
	}
	if a != a2 {
		t.Error("the same secret gave two signatures")
	}
}

func TestSignSetsPayloadHashAndToken(t *testing.T) {
	s := NewSigner()
	req, _ := http.NewRequest(http.MethodPut, "http://127.0.0.1:7070/b/k", strings.NewReader("x"))
	req.Header.Set("X-Amz-Security-Token", "from-the-client")
	if err := s.Sign(t.Context(), req, aws.Credentials{AccessKeyID: "id", SecretAccessKey: "s"}, "us-east-1", UnsignedPayload, time.Now()); err != nil {
		t.Fatal(err)
	}
	if req.Header.Get("X-Amz-Content-Sha256") != UnsignedPayload {
		t.Error("no UNSIGNED-PAYLOAD hash")
	}
	if _, ok := req.Header["X-Amz-Security-Token"]; ok {
		t.Error("a client's session token survived signing with credentials that have none")
	}
	if !strings.Contains(req.Header.Get("Authorization"), "content-length;host;x-amz-content-sha256;x-amz-date") {
		t.Errorf("signed headers: %s", req.Header.Get("Authorization"))
	}
	req, _ = http.NewRequest(http.MethodGet, "http://127.0.0.1:7070/b/k", nil)
	if err := s.Sign(t.Context(), req, aws.Credentials{AccessKeyID: "id", SecretAccessKey: "s", SessionToken: "tok"}, "us-east-1", UnsignedPayload, time.Now()); err != nil {
		t.Fatal(err)
	}
	if req.Header.Get("X-Amz-Security-Token") != "tok" || !strings.Contains(req.Header.Get("Authorization"), "x-amz-security-token") {
		t.Error("session token not sent and signed")
	}
}

func BenchmarkSign(b *testing.B) {
	s := NewSigner()
	c := aws.Credentials{AccessKeyID: "id", SecretAccessKey: "secret"}
	now := time.Now()
	req, _ := http.NewRequest(http.MethodGet, "https://acct.r2.cloudflarestorage.com/bucket/some/key.txt", nil)
	req.Header.Set("User-Agent", "bench")
	b.ReportAllocs()
	for b.Loop() {
		req.Header.Del("Authorization")
		if err := s.Sign(b.Context(), req, c, "auto", UnsignedPayload, now); err != nil {
			b.Fatal(err)
		}
	}
}
