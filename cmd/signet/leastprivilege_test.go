package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/signet-proxy/signet/internal/testenv"
)

// sendRaw writes req as it is (repeated headers and all) on a new connection to addr and
// reads the answer.
func sendRaw(t *testing.T, addr string, req *http.Request) *http.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := req.Write(c); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(strings.NewReader(string(b)))
	return resp
}

// errorCode is the Code of an S3 XML error answer.
func errorCode(resp *http.Response) string {
	var e struct{ Code string }
	b, _ := io.ReadAll(resp.Body)
	_ = xml.Unmarshal(b, &e)
	return e.Code
}

// unsignedTrailerChunks frames parts as aws-chunked unsigned chunks with a CRC32 trailer,
// the way SDKs send STREAMING-UNSIGNED-PAYLOAD-TRAILER; it returns the body and the
// decoded document.
func unsignedTrailerChunks(parts ...string) (body, decoded string) {
	var b strings.Builder
	for _, p := range parts {
		fmt.Fprintf(&b, "%x\r\n%s\r\n", len(p), p)
		decoded += p
	}
	sum := crc32.ChecksumIEEE([]byte(decoded))
	crc := base64.StdEncoding.EncodeToString([]byte{byte(sum >> 24), byte(sum >> 16), byte(sum >> 8), byte(sum)})
	fmt.Fprintf(&b, "0\r\nx-amz-checksum-crc32:%s\r\n\r\n", crc)
	return b.String(), decoded
}

// cdataSplit is finding 1's body: framed, the first CDATA section runs on to the last one
// and hides the Object naming victim; decoded, victim is a key of its own.
func cdataSplit(inside, victim string) (body, decoded string) {
	return unsignedTrailerChunks(
		`<Delete><Object><Key><![CDATA[`+inside+`a]]`,
		`></Key></Object><Object><Key>`+victim+`</Key></Object><Object><Key><![CDATA[`+inside+`b]]></Key></Object></Delete>`)
}

// leastPrivilegeRequest is one attack: a request built against a bucket, and what signet
// must answer.
type leastPrivilegeRequest struct {
	name   string
	build  func(bucket string) *http.Request
	status int
	code   string
}

func rawReq(method, target string, header [][2]string, body string) *http.Request {
	req, _ := http.NewRequest(method, "http://localhost"+target, strings.NewReader(body))
	if body == "" {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	for _, kv := range header {
		req.Header[kv[0]] = append(req.Header[kv[0]], kv[1])
	}
	return req
}

func chunkedDelete(bucket, body, decoded string) *http.Request {
	sum := md5.Sum([]byte(decoded))
	return rawReq("POST", "/"+bucket+"?delete", [][2]string{
		{"Content-Encoding", "aws-chunked"},
		{"X-Amz-Content-Sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"},
		{"X-Amz-Decoded-Content-Length", fmt.Sprint(len(decoded))},
		{"X-Amz-Trailer", "x-amz-checksum-crc32"},
		{"Content-Md5", base64.StdEncoding.EncodeToString(sum[:])},
	}, body)
}

// leastPrivilegeAttacks are the findings of issue 11 and variants of each class, against a
// bucket scoped to prefix inside (route or client).
func leastPrivilegeAttacks(inside string) []leastPrivilegeRequest {
	copyFrom := func(src string) func(string) *http.Request {
		return func(b string) *http.Request {
			return rawReq("PUT", "/"+b+"/"+inside+"copied", [][2]string{{"X-Amz-Copy-Source", strings.ReplaceAll(src, "BUCKET", b)}}, "")
		}
	}
	get := func(target string, header ...[2]string) func(string) *http.Request {
		return func(b string) *http.Request {
			return rawReq("GET", strings.ReplaceAll(target, "BUCKET", b), header, "")
		}
	}
	many := make([]string, 1001)
	for i := range many {
		many[i] = "<Object><Key>" + inside + fmt.Sprint(i) + "</Key></Object>"
	}
	return []leastPrivilegeRequest{
		// 1. DeleteObjects whose framing hides a key outside.
		{name: "1 delete with a chunk boundary in a CDATA end", status: 403, code: "AccessDenied", build: func(b string) *http.Request {
			body, decoded := cdataSplit(inside, "private/victim.txt")
			return chunkedDelete(b, body, decoded)
		}},
		{name: "1 delete with a key split across chunks", status: 403, code: "AccessDenied", build: func(b string) *http.Request {
			body, decoded := unsignedTrailerChunks("<Delete><Object><Key>priv", "ate/victim.txt</Key></Object></Delete>")
			return chunkedDelete(b, body, decoded)
		}},
		{name: "1 delete with two keys in one object", status: 400, code: "MalformedXML", build: func(b string) *http.Request {
			doc := "<Delete><Object><Key>" + inside + "a</Key><Key>private/victim.txt</Key></Object></Delete>"
			sum := md5.Sum([]byte(doc))
			return rawReq("POST", "/"+b+"?delete", [][2]string{{"Content-Md5", base64.StdEncoding.EncodeToString(sum[:])}}, doc)
		}},
		{name: "1 delete through dot segments", status: 400, code: "MalformedXML", build: func(b string) *http.Request {
			doc := "<Delete><Object><Key>" + inside + "../private/victim.txt</Key></Object></Delete>"
			sum := md5.Sum([]byte(doc))
			return rawReq("POST", "/"+b+"?delete", [][2]string{{"Content-Md5", base64.StdEncoding.EncodeToString(sum[:])}}, doc)
		}},
		// 2. Listings with a repeated prefix.
		{name: "2 list v2 with a second empty prefix", status: 400, code: "InvalidArgument", build: get("/BUCKET?list-type=2&prefix=" + inside + "&prefix=")},
		{name: "2 list v2 with a second prefix after", status: 400, code: "InvalidArgument", build: get("/BUCKET?list-type=2&prefix=" + inside + "&prefix=zzz")},
		{name: "2 list v1 with a second prefix", status: 400, code: "InvalidArgument", build: get("/BUCKET?prefix=" + inside + "&prefix=")},
		{name: "2 list versions with a second prefix", status: 400, code: "InvalidArgument", build: get("/BUCKET?versions&prefix=" + inside + "&prefix=")},
		{name: "2 list uploads with a second prefix", status: 400, code: "InvalidArgument", build: get("/BUCKET?uploads&prefix=" + inside + "&prefix=")},
		{name: "2 list with the prefix in two spellings", status: 400, code: "InvalidArgument", build: get("/BUCKET?list-type=2&prefix=" + inside + "&Prefix=")},
		// 3. Copy sources an S3 server resolves outside.
		{name: "3 copy through dot-dot", status: 400, code: "InvalidArgument", build: copyFrom("/BUCKET/" + inside + "../private/p.txt")},
		{name: "3 copy through encoded dot-dot", status: 400, code: "InvalidArgument", build: copyFrom("/BUCKET/" + inside + "%2e%2e/private/p.txt")},
		{name: "3 copy through encoded slashes", status: 400, code: "InvalidArgument", build: copyFrom("/BUCKET/" + strings.TrimSuffix(inside, "/") + "%2F..%2Fprivate%2Fp.txt")},
		{name: "3 copy through a query", status: 400, code: "InvalidArgument", build: copyFrom("/BUCKET/" + inside + "?x=/../../private/p.txt")},
		{name: "3 copy from outside", status: 403, code: "AccessDenied", build: copyFrom("/BUCKET/private/p.txt")},
		// 4. Two copy-source headers.
		{name: "4 empty then real copy source", status: 400, code: "InvalidArgument", build: func(b string) *http.Request {
			return rawReq("PUT", "/"+b+"/"+inside+"copied", [][2]string{{"X-Amz-Copy-Source", ""}, {"X-Amz-Copy-Source", "/secret/s.txt"}}, "")
		}},
		{name: "4 two copy sources", status: 400, code: "InvalidArgument", build: func(b string) *http.Request {
			return rawReq("PUT", "/"+b+"/"+inside+"copied", [][2]string{{"X-Amz-Copy-Source", "/" + b + "/" + inside + "a"}, {"X-Amz-Copy-Source", "/" + b + "/private/p.txt"}}, "")
		}},
		// 5. Upgrades.
		{name: "5 connection upgrade", status: 400, code: "InvalidRequest", build: get("/BUCKET/"+inside+"a", [2]string{"Connection", "Upgrade"}, [2]string{"Upgrade", "websocket"})},
		{name: "5 h2c upgrade", status: 400, code: "InvalidRequest", build: get("/BUCKET/"+inside+"a", [2]string{"Connection", "Upgrade, HTTP2-Settings"}, [2]string{"Upgrade", "h2c"})},
		// 6. Header spellings some server reads as S3's.
		{name: "6 underscore acl header", status: 400, code: "InvalidArgument", build: func(b string) *http.Request {
			return rawReq("PUT", "/"+b+"/"+inside+"acl", [][2]string{{"x_amz_acl", "public-read"}}, "x")
		}},
		{name: "6 method override", status: 400, code: "InvalidArgument", build: get("/BUCKET/"+inside+"a", [2]string{"X-Http-Method-Override", "DELETE"})},
		{name: "6 an amz header twice", status: 400, code: "InvalidArgument", build: func(b string) *http.Request {
			return rawReq("PUT", "/"+b+"/"+inside+"acl", [][2]string{{"X-Amz-Acl", ""}, {"X-Amz-Acl", "public-read"}}, "x")
		}},
		// 7. Bucket configuration behind a prefix.
		{name: "7 bucket acl", status: 403, code: "AccessDenied", build: get("/BUCKET?acl&prefix=" + inside)},
		{name: "7 bucket policy", status: 403, code: "AccessDenied", build: get("/BUCKET?policy&prefix=" + inside)},
		{name: "7 bucket versioning", status: 403, code: "AccessDenied", build: get("/BUCKET?versioning&prefix=" + inside)},
		{name: "7 ownership controls", status: 403, code: "AccessDenied", build: get("/BUCKET?ownershipControls&prefix=" + inside)},
		{name: "7 put bucket cors", status: 403, code: "AccessDenied", build: func(b string) *http.Request {
			return rawReq("PUT", "/"+b+"?cors", nil, "<CORSConfiguration/>")
		}},
		// 8. DeleteObjects bodies beyond S3's limits.
		{name: "8 more than 1000 keys", status: 400, code: "MalformedXML", build: func(b string) *http.Request {
			doc := "<Delete>" + strings.Join(many, "") + "</Delete>"
			sum := md5.Sum([]byte(doc))
			return rawReq("POST", "/"+b+"?delete", [][2]string{{"Content-Md5", base64.StdEncoding.EncodeToString(sum[:])}}, doc)
		}},
		{name: "8 a body over 2 MiB", status: 400, code: "MalformedXML", build: func(b string) *http.Request {
			doc := "<Delete><Object><Key>" + inside + "a</Key></Object>" + strings.Repeat(" ", 5<<19) + "</Delete>"
			return rawReq("POST", "/"+b+"?delete", nil, doc)
		}},
	}
}

// TestLeastPrivilegeAttacks: issue 11's findings against the binary, with a prefix-scoped
// route on versitygw (where they would have done harm) and on a recording upstream (which
// proves nothing was forwarded). Each is refused, and the private objects stay as they were.
func TestLeastPrivilegeAttacks(t *testing.T) {
	gw := testenv.StartVersityGW(t)
	var rec upstreamLog
	recorder := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "" {
			// An upstream that upgrades would get a raw tunnel past every check.
			w.Header().Set("Connection", "Upgrade")
			w.Header().Set("Upgrade", r.Header.Get("Upgrade"))
			w.WriteHeader(http.StatusSwitchingProtocols)
		}
		rec.handler(w, r)
	}))
	t.Cleanup(recorder.Close)
	p := startSignet(t, "--config", writeConfig(t, fmt.Sprintf(`admin_listen: "off"
accounts:
  gw: {endpoint: %s, credentials: {access_key_id: %s, secret_access_key: %s}}
  rec: {endpoint: %s, credentials: {access_key_id: a, secret_access_key: b}}
buckets:
  - {name: photos, account: gw, prefixes: [allowed/]}
  - {name: all, account: gw, upstream_bucket: photos}
  - {name: recorded, account: rec, prefixes: [allowed/]}
`, gw.Endpoint, gw.AccessKey, gw.SecretKey, recorder.URL)))
	c := &http.Client{Transport: &http.Transport{}}
	for _, put := range []string{"/all", "/all/private/victim.txt", "/all/private/p.txt", "/all/allowed/a"} {
		var body io.Reader = strings.NewReader("private")
		if put == "/all" {
			body = nil
		}
		if code, body := do(t, c, "PUT", "http://"+p.addr+put, body); code != 200 {
			t.Fatalf("set up %s: %d %s", put, code, body)
		}
	}

	for _, a := range leastPrivilegeAttacks("allowed/") {
		for _, bucket := range []string{"photos", "recorded"} {
			t.Run(a.name+" on "+bucket, func(t *testing.T) {
				resp := sendRaw(t, p.addr, a.build(bucket))
				if code := errorCode(resp); resp.StatusCode != a.status || code != a.code {
					t.Errorf("got %d %s, want %d %s", resp.StatusCode, code, a.status, a.code)
				}
			})
		}
	}
	if got := rec.requests(); len(got) > 0 {
		t.Errorf("the recording upstream was reached: %v", got)
	}
	for _, k := range []string{"private/victim.txt", "private/p.txt"} {
		if code, body := do(t, c, "GET", "http://"+p.addr+"/all/"+k, nil); code != 200 || body != "private" {
			t.Errorf("%s is now %d %q", k, code, body)
		}
	}
	if code, _ := do(t, c, "HEAD", "http://"+p.addr+"/all/allowed/copied", nil); code != 404 {
		t.Errorf("a copy reached allowed/copied: HEAD %d", code)
	}
	// And what is inside still works: an aws-chunked DeleteObjects inside the prefix, whose
	// only checksum is its trailer (S3 needs one on DeleteObjects: signet sends the MD5).
	body, decoded := unsignedTrailerChunks("<Delete><Object><Key>allowed/a</Key></Object></Delete>")
	req := chunkedDelete("photos", body, decoded)
	req.Header.Del("Content-Md5")
	if resp := sendRaw(t, p.addr, req); resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("a DeleteObjects inside the prefix: %d %s", resp.StatusCode, b)
	}
	if code, _ := do(t, c, "HEAD", "http://"+p.addr+"/all/allowed/a", nil); code != 404 {
		t.Errorf("allowed/a was not deleted: HEAD %d", code)
	}
}

// TestLeastPrivilegeAttacksOnClients: the same findings against a client identity scoped to
// a prefix, each request signed by the client itself, so that only the policy stops them.
func TestLeastPrivilegeAttacksOnClients(t *testing.T) {
	gw := testenv.StartVersityGW(t)
	var rec upstreamLog
	recorder := httptest.NewServer(http.HandlerFunc(rec.handler))
	t.Cleanup(recorder.Close)
	p := startSignet(t, "--config", writeConfig(t, fmt.Sprintf(`admin_listen: "off"
clients:
  - {name: web, access_key_id: web-key, secret_access_key: web-secret-key, buckets: [photos, recorded], prefixes: [incoming/]}
  - {name: admin, access_key_id: admin-key, secret_access_key: admin-secret-key, buckets: ["*"]}
accounts:
  gw: {endpoint: %s, credentials: {access_key_id: %s, secret_access_key: %s}}
  rec: {endpoint: %s, credentials: {access_key_id: a, secret_access_key: b}}
buckets:
  - {name: photos, account: gw}
  - {name: recorded, account: rec}
`, gw.Endpoint, gw.AccessKey, gw.SecretKey, recorder.URL)))
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	sign := func(t *testing.T, req *http.Request, id, secret string) *http.Request {
		t.Helper()
		hash := req.Header.Get("X-Amz-Content-Sha256")
		if hash == "" {
			hash = "UNSIGNED-PAYLOAD"
			req.Header.Set("X-Amz-Content-Sha256", hash)
		}
		req.Host = p.addr
		if err := signer.SignHTTP(t.Context(), aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}, req, hash, "s3", "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
		return req
	}
	for _, k := range []string{"/photos", "/photos/private/victim.txt", "/photos/private/p.txt", "/photos/incoming/a"} {
		body := "private"
		if k == "/photos" {
			body = ""
		}
		if resp := sendRaw(t, p.addr, sign(t, rawReq("PUT", k, nil, body), "admin-key", "admin-secret-key")); resp.StatusCode != 200 {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("set up %s: %d %s", k, resp.StatusCode, b)
		}
	}
	for _, a := range leastPrivilegeAttacks("incoming/") {
		for _, bucket := range []string{"photos", "recorded"} {
			t.Run(a.name+" on "+bucket, func(t *testing.T) {
				resp := sendRaw(t, p.addr, sign(t, a.build(bucket), "web-key", "web-secret-key"))
				code := errorCode(resp)
				// A signature over a repeated header or an odd spelling may fail to verify
				// first; refused either way, and never forwarded.
				if resp.StatusCode == 403 && code == "SignatureDoesNotMatch" && a.status != 403 {
					return
				}
				if resp.StatusCode != a.status || code != a.code {
					t.Errorf("got %d %s, want %d %s", resp.StatusCode, code, a.status, a.code)
				}
			})
		}
	}
	if got := rec.requests(); len(got) > 0 {
		t.Errorf("the recording upstream was reached: %v", got)
	}
	for _, k := range []string{"/photos/private/victim.txt", "/photos/private/p.txt"} {
		resp := sendRaw(t, p.addr, sign(t, rawReq("GET", k, nil, ""), "admin-key", "admin-secret-key"))
		if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || string(b) != "private" {
			t.Errorf("%s is now %d %q", k, resp.StatusCode, b)
		}
	}
}

// TestServerExtensionsStayInScope: MinIO unpacks an uploaded tar into the bucket when the
// PUT carries X-Amz-Meta-Snowball-Auto-Extract, and X-Minio-Force-Delete deletes everything
// under a key: through a scoped route, both would reach keys signet never saw. They are
// refused on scoped routes (and kept on open ones, where every key is the client's anyway).
func TestServerExtensionsStayInScope(t *testing.T) {
	m := testenv.StartMinIO(t)
	p := startSignet(t, "--config", writeConfig(t, fmt.Sprintf(`admin_listen: "off"
accounts:
  mn: {endpoint: %s, credentials: {access_key_id: %s, secret_access_key: %s}}
buckets:
  - {name: mphotos, account: mn, prefixes: [allowed/]}
  - {name: mone, account: mn, upstream_bucket: mphotos, objects: [shared/report.txt]}
  - {name: mall, account: mn, upstream_bucket: mphotos}
`, m.Endpoint, m.RootUser, m.RootPassword)))
	c := &http.Client{Transport: &http.Transport{}}
	for _, put := range []string{"/mall", "/mall/private/victim.txt", "/mall/shared/report.txt", "/mall/shared/report.txt/child"} {
		var body io.Reader = strings.NewReader("private")
		if put == "/mall" {
			body = nil
		}
		if code, b := do(t, c, "PUT", "http://"+p.addr+put, body); code != 200 {
			t.Fatalf("set up %s: %d %s", put, code, b)
		}
	}
	var tarball bytes.Buffer
	tw := tar.NewWriter(&tarball)
	tw.WriteHeader(&tar.Header{Name: "private/victim.txt", Mode: 0o644, Size: 6})
	tw.Write([]byte("pwned!"))
	tw.Close()

	extract := rawReq("PUT", "/mphotos/allowed/x.tar", [][2]string{{"X-Amz-Meta-Snowball-Auto-Extract", "true"}}, tarball.String())
	if resp := sendRaw(t, p.addr, extract); resp.StatusCode != 403 {
		t.Errorf("snowball extract through a prefix-scoped route: %d, want 403", resp.StatusCode)
	}
	force := rawReq("DELETE", "/mone/shared/report.txt", [][2]string{{"X-Minio-Force-Delete", "true"}}, "")
	if resp := sendRaw(t, p.addr, force); resp.StatusCode != 403 {
		t.Errorf("force delete through an object-scoped route: %d, want 403", resp.StatusCode)
	}
	for _, k := range []string{"private/victim.txt", "shared/report.txt/child"} {
		if code, body := do(t, c, "GET", "http://"+p.addr+"/mall/"+k, nil); code != 200 || body != "private" {
			t.Errorf("%s is now %d %q", k, code, body)
		}
	}
	// On the open route the extension is the client's to use, and works.
	extract = rawReq("PUT", "/mall/x.tar", [][2]string{{"X-Amz-Meta-Snowball-Auto-Extract", "true"}}, tarball.String())
	if resp := sendRaw(t, p.addr, extract); resp.StatusCode != 200 {
		t.Fatalf("snowball extract on an open route: %d", resp.StatusCode)
	}
	if code, body := do(t, c, "GET", "http://"+p.addr+"/mall/private/victim.txt", nil); code != 200 || body != "pwned!" {
		t.Errorf("the extension did not work on the open route (%d %q): this test no longer shows the attack", code, body)
	}
}
