package proxy_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/signet-proxy/signet/proxy"
)

// presign asks signet at endpoint for a presigned URL, unsigned.
func presign(t *testing.T, endpoint, body string) (int, proxy.PresignResponse, s3ErrorBody) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, endpoint+"/_signet/presign", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return presignDo(t, req)
}

func presignDo(t *testing.T, req *http.Request) (int, proxy.PresignResponse, s3ErrorBody) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, proxy.PresignResponse{}, readError(t, resp)
	}
	defer resp.Body.Close()
	var pr proxy.PresignResponse
	if err := json.NewDecoder(resp.Body).Decode(&pr); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, pr, s3ErrorBody{}
}

// TestPresignEndpoint: a presigned PUT and GET from /_signet/presign work with curl
// straight against the backend, no signet between; presigns signet must not give are refused.
func TestPresignEndpoint(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatal("curl is needed: apt-get install curl")
	}
	e := newEnv(t, "")
	e.mkBuckets(t, "alpha")
	h := newHandler(t, fmt.Sprintf(`
accounts:
  gw: {endpoint: %s, credentials: {access_key_id: %s, secret_access_key: %s}}
buckets:
  - {name: alpha, account: gw}
  - {name: frozen, account: gw, upstream_bucket: alpha, access: read-only}
  - {name: scoped, account: gw, upstream_bucket: alpha, prefixes: [public/]}
`, e.gw.Endpoint, e.gw.AccessKey, e.gw.SecretKey))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	code, put, _ := presign(t, srv.URL, `{"bucket": "alpha", "key": "from curl/a+b.txt", "method": "PUT", "expires": 300}`)
	if code != 200 || !strings.HasPrefix(put.URL, e.gw.Endpoint+"/alpha/from%20curl/a%2Bb.txt?") || put.Method != "PUT" {
		t.Fatalf("presign PUT: %d %+v", code, put)
	}
	file := filepath.Join(t.TempDir(), "upload")
	if err := os.WriteFile(file, []byte("uploaded by curl"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(curl, "-fsS", "-T", file, put.URL).CombinedOutput(); err != nil {
		t.Fatalf("curl PUT to the backend: %v %s", err, out)
	}
	_, getURL, _ := presign(t, srv.URL, `{"bucket": "alpha", "key": "from curl/a+b.txt"}`)
	out, err := exec.Command(curl, "-fsS", getURL.URL).Output()
	if err != nil || string(out) != "uploaded by curl" {
		t.Fatalf("curl GET from the backend: %q %v", out, err)
	}

	for _, tc := range []struct {
		name, body string
		status     int
		code       string
	}{
		{"unrouted bucket", `{"bucket": "nothere", "key": "k"}`, 404, "NoSuchBucket"},
		{"write to a read-only route", `{"bucket": "frozen", "key": "k", "method": "PUT"}`, 403, "AccessDenied"},
		{"outside the prefixes", `{"bucket": "scoped", "key": "private/k"}`, 403, "AccessDenied"},
		{"too long", `{"bucket": "alpha", "key": "k", "expires": 604801}`, 400, "InvalidArgument"},
		{"no key", `{"bucket": "alpha"}`, 400, "InvalidArgument"},
		{"unknown field", `{"bucket": "alpha", "key": "k", "acl": "public"}`, 400, "InvalidArgument"},
		{"odd method", `{"bucket": "alpha", "key": "k", "method": "POST"}`, 400, "InvalidArgument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, e := presign(t, srv.URL, tc.body)
			if code != tc.status || e.Code != tc.code {
				t.Errorf("%d %+v", code, e)
			}
		})
	}
	if _, ok, _ := presign(t, srv.URL, `{"bucket": "scoped", "key": "public/k"}`); ok.URL == "" {
		t.Error("a key inside the prefixes was refused")
	}
	// The admin listener, which probes and scrapers reach, hands out nothing.
	admin := httptest.NewServer(h.Admin(nil))
	t.Cleanup(admin.Close)
	resp, err := http.Post(admin.URL+"/_signet/presign", "application/json", strings.NewReader(`{"bucket": "alpha", "key": "k"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("the admin listener answered a presign with %d", resp.StatusCode)
	}
}

// TestPresignMintsPerObject: with minted credentials, the URL is signed with a credential
// for that one object, living as long as the URL (up to a quarter more, so that the next
// URLs for the object reuse it), and the backend accepts it.
func TestPresignMintsPerObject(t *testing.T) {
	e := newR2Env(t, nil, apiCreds, r2Routes)
	put(t, e.s3, "photos", "cat.jpg", []byte("meow"))
	h := proxy.New(mustSetup(t, e.cfg, nil), proxy.Options{})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	code, pr, er := presign(t, srv.URL, `{"bucket": "photos", "key": "cat.jpg", "expires": 120}`)
	if code != 200 {
		t.Fatalf("%d %+v", code, er)
	}
	resp, err := http.Get(pr.URL)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || b.String() != "meow" {
		t.Fatalf("GET from MinIO: %d %q", resp.StatusCode, b.String())
	}
	issued := e.cf.Issued()
	last := issued[len(issued)-1].Request
	if last.TTLSeconds < 120 || last.TTLSeconds > 150 || !slices.Equal(last.Objects, []string{"cat.jpg"}) || last.Permission != "object-read-only" {
		t.Errorf("minted for the URL: %+v", last)
	}
	if !strings.Contains(pr.URL, "X-Amz-Security-Token=") {
		t.Error("the URL carries no session token")
	}
}

// TestPresignWithClientIdentities: with clients, the presign endpoint answers only requests
// signed by a client, and presigns only what that client may do itself.
func TestPresignWithClientIdentities(t *testing.T) {
	_, srv := clientsEnv(t)
	signed := func(id, secret, body, signedBody string) *http.Request {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/_signet/presign", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(signedBody))
		hash := hex.EncodeToString(sum[:])
		req.Header.Set("X-Amz-Content-Sha256", hash)
		err = v4.NewSigner().SignHTTP(t.Context(), aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}, req, hash, "s3", "us-east-1", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return req
	}
	const webGet = `{"bucket": "photos", "key": "a.jpg"}`
	for _, tc := range []struct {
		name   string
		req    *http.Request
		status int
		code   string
	}{
		{"a client's own read", signed("web-local", "web-local-secret", webGet, webGet), 200, ""},
		{"a client's own write", signed("batch-local", "batch-local-secret", `{"bucket": "logs-1", "key": "x", "method": "PUT"}`, `{"bucket": "logs-1", "key": "x", "method": "PUT"}`), 200, ""},
		{"unsigned", func() *http.Request {
			r, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/_signet/presign", strings.NewReader(webGet))
			return r
		}(), 403, "AccessDenied"},
		{"wrong secret", signed("web-local", "not-the-secret", webGet, webGet), 403, "SignatureDoesNotMatch"},
		{"body other than signed", signed("web-local", "web-local-secret", `{"bucket": "photos", "key": "b.jpg"}`, webGet), 400, "XAmzContentSHA256Mismatch"},
		{"write by a read-only client", signed("web-local", "web-local-secret", `{"bucket": "photos", "key": "a.jpg", "method": "PUT"}`, `{"bucket": "photos", "key": "a.jpg", "method": "PUT"}`), 403, "AccessDenied"},
		{"a bucket the client may not use", signed("web-local", "web-local-secret", `{"bucket": "private", "key": "a"}`, `{"bucket": "private", "key": "a"}`), 403, "AccessDenied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, res, e := presignDo(t, tc.req)
			if code != tc.status || e.Code != tc.code || (code == 200) != (res.URL != "") {
				t.Errorf("got %d %+v %q, want %d %s", code, e, res.URL, tc.status, tc.code)
			}
		})
	}

	// As the README shows it, with curl's own SigV4 signing.
	out, err := exec.Command("curl", "-sS", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user", "web-local:web-local-secret",
		"-H", "Content-Type: application/json", "-H", "X-Amz-Content-Sha256: UNSIGNED-PAYLOAD", "--data-binary", webGet, srv.URL+"/_signet/presign").CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"url":`) {
		t.Errorf("curl --aws-sigv4: %v %s", err, out)
	}
}

// TestPresignKeepsRouteActions: with local minting, a presigned URL's credential allows
// what its method needs within the route's actions, and a method outside them is refused.
func TestPresignKeepsRouteActions(t *testing.T) {
	h := newHandler(t, `
accounts:
  edge:
    r2_account_id: 0123456789abcdef0123456789abcdef
    credentials:
      r2_temp_local: {parent_access_key_id: parentkey, parent_secret_access_key: parentsecret}
buckets:
  - {name: thumbs, account: edge, actions: [GetObject, HeadObject]}
  - {name: getonly, account: edge, actions: [GetObject]}
  - {name: open, account: edge}
`)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		bucket, method string
		want           []string // the credential's actions; nil: refused
	}{
		{"thumbs", "GET", []string{"GetObject", "HeadObject"}},
		{"thumbs", "PUT", nil},
		{"thumbs", "DELETE", nil},
		{"getonly", "HEAD", []string{"GetObject"}},
		{"open", "PUT", []string{"PutObject"}},
	} {
		t.Run(tc.bucket+" "+tc.method, func(t *testing.T) {
			code, pr, e := presign(t, srv.URL, fmt.Sprintf(`{"bucket": %q, "key": "a.jpg", "method": %q}`, tc.bucket, tc.method))
			if tc.want == nil {
				if code != 403 || e.Code != "AccessDenied" {
					t.Errorf("got %d %+v, want 403 AccessDenied", code, e)
				}
				return
			}
			if code != 200 {
				t.Fatalf("%d %+v", code, e)
			}
			u, err := url.Parse(pr.URL)
			if err != nil {
				t.Fatal(err)
			}
			token, err := base64.StdEncoding.DecodeString(u.Query().Get("X-Amz-Security-Token"))
			if err != nil {
				t.Fatal(err)
			}
			parts := strings.Split(strings.TrimPrefix(string(token), "jwt/"), ".")
			payload, err := base64.RawURLEncoding.DecodeString(parts[1])
			if err != nil {
				t.Fatal(err)
			}
			var claims struct{ Actions []string }
			if err := json.Unmarshal(payload, &claims); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(claims.Actions, tc.want) {
				t.Errorf("actions %v, want %v", claims.Actions, tc.want)
			}
		})
	}
}
