package proxy

import (
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/signet-proxy/signet/config"
)

// planTable is a table with prefix-scoped, read-only, action-narrowed and open routes, and
// (when withClients) client identities; nothing is ever sent anywhere.
func planTable(t *testing.T, withClients bool) (*Handler, *Table) {
	t.Helper()
	clients := ""
	if withClients {
		clients = `clients:
  - {name: web, access_key_id: web-key, secret_access_key: web-secret, buckets: [photos, open], prefixes: [incoming/]}
  - {name: ro, access_key_id: ro-key, secret_access_key: ro-secret, buckets: ["*"], access: read-only}
`
	}
	cfg, err := config.Parse("plan.yaml", []byte(clients+`
accounts:
  gw: {endpoint: "http://127.0.0.1:1", credentials: {access_key_id: a, secret_access_key: b}}
  other: {endpoint: "http://127.0.0.1:2", credentials: {access_key_id: c, secret_access_key: d}}
buckets:
  - {name: photos, account: gw, prefixes: [allowed/, incoming/]}
  - {name: open, account: gw}
  - {name: frozen, account: gw, access: read-only}
  - {name: manifest, account: gw, objects: [m.json]}
  - {name: elsewhere, account: other}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := Setup(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tbl.Close() })
	return New(tbl, Options{Logger: slog.New(slog.DiscardHandler)}), tbl
}

// TestDecide: every refusal signet makes before forwarding, on the request as it will be
// sent, and what it plans for requests it takes.
func TestDecide(t *testing.T) {
	h, tbl := planTable(t, false)
	tests := []struct {
		name   string
		method string
		target string
		header [][2]string
		body   string
		code   string // "" for accepted
		action action
		copy   string // planned x-amz-copy-source
		query  string // planned raw query
	}{
		{name: "get inside", method: "GET", target: "/photos/allowed/a", action: actGetObject},
		{name: "get outside", method: "GET", target: "/photos/private/a", code: "AccessDenied"},
		{name: "sdk x-id is neutral", method: "GET", target: "/photos/allowed/a?x-id=GetObject", action: actGetObject, query: "x-id=GetObject"},
		{name: "list inside", method: "GET", target: "/photos?list-type=2&prefix=allowed%2F", action: actListObjectsV2, query: "list-type=2&prefix=allowed%2F"},
		{name: "list v1 inside", method: "GET", target: "/photos?prefix=allowed/&delimiter=/", action: actListObjects},
		{name: "list versions inside", method: "GET", target: "/photos?versions&prefix=allowed/", action: actListObjectVersions},
		{name: "list uploads inside", method: "GET", target: "/photos?uploads&prefix=allowed/", action: actListMultipartUploads},
		{name: "list without prefix", method: "GET", target: "/photos?list-type=2", code: "AccessDenied"},
		{name: "prefix given twice", method: "GET", target: "/photos?list-type=2&prefix=allowed%2F&prefix=", code: "InvalidArgument"},
		{name: "prefix given twice, later value after", method: "GET", target: "/photos?list-type=2&prefix=allowed%2F&prefix=zzz", code: "InvalidArgument"},
		{name: "prefix twice on versions", method: "GET", target: "/photos?versions&prefix=allowed/&prefix=", code: "InvalidArgument"},
		{name: "prefix twice on uploads", method: "GET", target: "/photos?uploads&prefix=allowed/&prefix=", code: "InvalidArgument"},
		{name: "prefix twice on v1", method: "GET", target: "/photos?prefix=allowed/&prefix=", code: "InvalidArgument"},
		{name: "prefix in two spellings", method: "GET", target: "/photos?list-type=2&prefix=allowed/&Prefix=", code: "InvalidArgument"},
		{name: "prefix with an encoded name", method: "GET", target: "/photos?list-type=2&prefix=allowed/&%70refix=", code: "InvalidArgument"},
		{name: "any parameter twice", method: "GET", target: "/open/k?versionId=1&versionId=2", code: "InvalidArgument"},
		{name: "prefix with dot segments", method: "GET", target: "/photos?list-type=2&prefix=allowed/../", code: "InvalidArgument"},
		{name: "bucket acl behind a prefix", method: "GET", target: "/photos?acl&prefix=allowed%2F", code: "AccessDenied"},
		{name: "bucket policy behind a prefix", method: "GET", target: "/photos?policy&prefix=allowed%2F", code: "AccessDenied"},
		{name: "bucket versioning behind a prefix", method: "GET", target: "/photos?versioning&prefix=allowed%2F", code: "AccessDenied"},
		{name: "ownership controls behind a prefix", method: "GET", target: "/photos?ownershipControls&prefix=allowed%2F", code: "AccessDenied"},
		{name: "cors behind a prefix", method: "GET", target: "/photos?cors", code: "AccessDenied"},
		{name: "lifecycle write behind a prefix", method: "PUT", target: "/photos?lifecycle", code: "AccessDenied"},
		{name: "tagging delete behind a prefix", method: "DELETE", target: "/photos?tagging", code: "AccessDenied"},
		{name: "delete bucket behind a prefix", method: "DELETE", target: "/photos", code: "AccessDenied"},
		{name: "location behind a prefix", method: "GET", target: "/photos?location", action: actGetBucketLocation},
		{name: "head bucket behind a prefix", method: "HEAD", target: "/photos", action: actHeadBucket},
		{name: "bucket acl on an open route", method: "GET", target: "/open?acl", action: actBucketRead},
		{name: "object tagging inside", method: "PUT", target: "/photos/allowed/a?tagging", action: actObjectWrite},
		{name: "object tagging outside", method: "GET", target: "/photos/private/a?tagging", code: "AccessDenied"},
		{name: "exact object", method: "PUT", target: "/manifest/m.json", action: actPutObject},
		{name: "other object", method: "PUT", target: "/manifest/n.json", code: "AccessDenied"},
		{name: "read-only route", method: "PUT", target: "/frozen/k", code: "AccessDenied"},
		{name: "read-only route reads", method: "GET", target: "/frozen/k", action: actGetObject},
		{name: "multipart create", method: "POST", target: "/photos/allowed/big?uploads", action: actCreateMultipartUpload},
		{name: "multipart part", method: "PUT", target: "/photos/allowed/big?partNumber=1&uploadId=u", action: actUploadPart},
		{name: "multipart complete outside", method: "POST", target: "/photos/private/big?uploadId=u", code: "AccessDenied"},

		{name: "copy inside", method: "PUT", target: "/photos/allowed/c", header: [][2]string{{"X-Amz-Copy-Source", "/photos/allowed/a"}}, action: actCopyObject, copy: "/photos/allowed/a"},
		{name: "copy with a version", method: "PUT", target: "/photos/allowed/c", header: [][2]string{{"X-Amz-Copy-Source", "photos/allowed/a%20b?versionId=v%2B1"}}, action: actCopyObject, copy: "/photos/allowed/a%20b?versionId=v%2B1"},
		{name: "copy part", method: "PUT", target: "/photos/allowed/c?partNumber=1&uploadId=u", header: [][2]string{{"X-Amz-Copy-Source", "/open/x"}}, action: actUploadPartCopy, copy: "/open/x"},
		{name: "copy from outside", method: "PUT", target: "/photos/allowed/c", header: [][2]string{{"X-Amz-Copy-Source", "/photos/private/p.txt"}}, code: "AccessDenied"},
		{name: "copy through dot-dot", method: "PUT", target: "/photos/allowed/c", header: [][2]string{{"X-Amz-Copy-Source", "/photos/allowed/../private/p.txt"}}, code: "InvalidArgument"},
		{name: "copy through encoded dot-dot", method: "PUT", target: "/photos/allowed/c", header: [][2]string{{"X-Amz-Copy-Source", "/photos/allowed/%2e%2e/private/p.txt"}}, code: "InvalidArgument"},
		{name: "copy through encoded slashes", method: "PUT", target: "/photos/allowed/c", header: [][2]string{{"X-Amz-Copy-Source", "/photos/allowed%2F..%2Fprivate%2Fp.txt"}}, code: "InvalidArgument"},
		{name: "copy through a query", method: "PUT", target: "/photos/allowed/c", header: [][2]string{{"X-Amz-Copy-Source", "/photos/allowed/?x=/../../private/p.txt"}}, code: "InvalidArgument"},
		{name: "copy with a second parameter", method: "PUT", target: "/photos/allowed/c", header: [][2]string{{"X-Amz-Copy-Source", "/photos/allowed/a?versionId=1&x=2"}}, code: "InvalidArgument"},
		{name: "copy source empty then set", method: "PUT", target: "/open/c", header: [][2]string{{"X-Amz-Copy-Source", ""}, {"X-Amz-Copy-Source", "/secret/s.txt"}}, code: "InvalidArgument"},
		{name: "copy source twice", method: "PUT", target: "/open/c", header: [][2]string{{"X-Amz-Copy-Source", "/open/a"}, {"X-Amz-Copy-Source", "/open/b"}}, code: "InvalidArgument"},
		{name: "copy source empty", method: "PUT", target: "/open/c", header: [][2]string{{"X-Amz-Copy-Source", " "}}, code: "InvalidArgument"},
		{name: "copy on a GET", method: "GET", target: "/open/c", header: [][2]string{{"X-Amz-Copy-Source", "/open/a"}}, code: "InvalidRequest"},
		{name: "copy from an unrouted bucket", method: "PUT", target: "/open/c", header: [][2]string{{"X-Amz-Copy-Source", "/secret/s.txt"}}, code: "NoSuchBucket"},
		{name: "copy across accounts", method: "PUT", target: "/open/c", header: [][2]string{{"X-Amz-Copy-Source", "/elsewhere/s.txt"}}, code: "InvalidRequest"},

		{name: "upgrade", method: "GET", target: "/open/k", header: [][2]string{{"Connection", "Upgrade"}, {"Upgrade", "websocket"}}, code: "InvalidRequest"},
		{name: "upgrade token among others", method: "GET", target: "/open/k", header: [][2]string{{"Connection", "keep-alive, upgrade"}}, code: "InvalidRequest"},
		{name: "h2c upgrade", method: "GET", target: "/open/k", header: [][2]string{{"Upgrade", "h2c"}}, code: "InvalidRequest"},
		{name: "connection naming a header", method: "PUT", target: "/open/k", header: [][2]string{{"Connection", "keep-alive, Content-MD5"}}, code: "InvalidArgument"},
		{name: "connection keep-alive", method: "GET", target: "/open/k", header: [][2]string{{"Connection", "Keep-Alive"}}, action: actGetObject},
		{name: "underscore amz header", method: "PUT", target: "/open/k", header: [][2]string{{"x_amz_acl", "public-read"}}, code: "InvalidArgument"},
		{name: "underscore content header", method: "PUT", target: "/open/k", header: [][2]string{{"Content_Type", "text/html"}}, code: "InvalidArgument"},
		{name: "method override", method: "GET", target: "/open/k", header: [][2]string{{"X-HTTP-Method-Override", "DELETE"}}, code: "InvalidArgument"},
		{name: "method override, underscores", method: "GET", target: "/open/k", header: [][2]string{{"X_HTTP_Method", "DELETE"}}, code: "InvalidArgument"},
		{name: "amz header twice", method: "PUT", target: "/open/k", header: [][2]string{{"X-Amz-Acl", ""}, {"X-Amz-Acl", "public-read"}}, code: "InvalidArgument"},
		{name: "meta header twice", method: "PUT", target: "/open/k", header: [][2]string{{"X-Amz-Meta-A", "1"}, {"X-Amz-Meta-A", "2"}}, code: "InvalidArgument"},
		{name: "range twice", method: "GET", target: "/open/k", header: [][2]string{{"Range", "bytes=0-1"}, {"Range", "bytes=5-9"}}, code: "InvalidArgument"},
		{name: "if-match twice", method: "GET", target: "/open/k", header: [][2]string{{"If-Match", "a"}, {"If-Match", ""}}, code: "InvalidArgument"},
		{name: "accept twice is fine", method: "GET", target: "/open/k", header: [][2]string{{"Accept", "a"}, {"Accept", "b"}}, action: actGetObject},
		{name: "other underscore headers pass (and are not forwarded)", method: "GET", target: "/open/k", header: [][2]string{{"My_Header", "x"}}, action: actGetObject},

		{name: "snowball extract behind a prefix", method: "PUT", target: "/photos/allowed/x.tar", header: [][2]string{{"X-Amz-Meta-Snowball-Auto-Extract", "true"}}, code: "AccessDenied"},
		{name: "snowball prefix behind a prefix", method: "PUT", target: "/photos/allowed/x.tar", header: [][2]string{{"X-Amz-Meta-Minio-Snowball-Prefix", "private"}}, code: "AccessDenied"},
		{name: "minio force delete behind an object scope", method: "DELETE", target: "/manifest/m.json", header: [][2]string{{"X-Minio-Force-Delete", "true"}}, code: "AccessDenied"},
		{name: "ceph extension behind a prefix", method: "PUT", target: "/photos/allowed/x", header: [][2]string{{"X-Rgw-Anything", "1"}}, code: "AccessDenied"},
		{name: "rename source behind a prefix", method: "PUT", target: "/photos/allowed/x?renameObject", header: [][2]string{{"X-Amz-Rename-Source", "/photos/private/p.txt"}}, code: "AccessDenied"},
		{name: "snowball on an open route", method: "PUT", target: "/open/x.tar", header: [][2]string{{"X-Amz-Meta-Snowball-Auto-Extract", "true"}}, action: actPutObject},
		{name: "other metadata behind a prefix", method: "PUT", target: "/photos/allowed/x", header: [][2]string{{"X-Amz-Meta-Mtime", "1"}}, action: actPutObject},
		{name: "served as HTML, another spelling", method: "GET", target: "/open/k?Response-Content-Type=text/html", code: "InvalidArgument"},
		{name: "served as HTML, upper case", method: "GET", target: "/open/k?RESPONSE-CONTENT-TYPE=TEXT/HTML", code: "InvalidArgument"},
		{name: "head bucket policy behind a prefix", method: "HEAD", target: "/photos?policy", code: "AccessDenied"},
		{name: "copy source key with an encoded ?", method: "PUT", target: "/photos/allowed/c", header: [][2]string{{"X-Amz-Copy-Source", "/photos/allowed/a%3FversionId=1"}}, code: "InvalidArgument"},
		{name: "presign endpoint", method: "POST", target: "/_signet/presign", action: actPresign},
		{name: "list buckets", method: "GET", target: "/", action: actListBuckets},
		{name: "auth parameters are not forwarded", method: "GET", target: "/open/k?X-Amz-Signature=x&X-Amz-Credential=y&versionId=v", action: actGetObject, query: "versionId=v"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := serverRequest(tt.method, tt.target, tt.body)
			if tt.body == "" {
				r.Body, r.ContentLength = http.NoBody, 0
			}
			for _, kv := range tt.header {
				r.Header[http.CanonicalHeaderKey(kv[0])] = append(r.Header[http.CanonicalHeaderKey(kv[0])], kv[1])
				if strings.Contains(kv[0], "_") {
					r.Header[kv[0]] = []string{kv[1]}
				}
			}
			p, err := h.decide(r, tbl, "id")
			switch {
			case tt.code != "" && err == nil:
				t.Fatalf("accepted as %s, want %s", p.action, tt.code)
			case tt.code != "" && err.Code != tt.code:
				t.Fatalf("got %s (%s), want %s", err.Code, err.Message, tt.code)
			case tt.code == "" && err != nil:
				t.Fatalf("refused: %s %s", err.Code, err.Message)
			case tt.code == "" && p.action != tt.action:
				t.Errorf("action %q, want %q", p.action, tt.action)
			}
			if tt.code == "" && p.copySource != tt.copy {
				t.Errorf("copy source %q, want %q", p.copySource, tt.copy)
			}
			if tt.query != "" && p.rawQuery != tt.query {
				t.Errorf("query %q, want %q", p.rawQuery, tt.query)
			}
		})
	}
}

// aws-chunked frames payload's parts as unsigned chunks with a CRC32 trailer (not checked
// here: the decoder's own tests do that).
func awsChunked(parts ...string) (string, int) {
	var b strings.Builder
	n := 0
	for _, p := range parts {
		fmt.Fprintf(&b, "%x\r\n%s\r\n", len(p), p)
		n += len(p)
	}
	b.WriteString("0\r\n\r\n")
	return b.String(), n
}

// TestDecideDeleteObjects: the keys of a DeleteObjects document are checked as the upstream
// will read them: after aws-chunked decoding, with one parse that refuses every shape
// parsers disagree on.
func TestDecideDeleteObjects(t *testing.T) {
	h, tbl := planTable(t, false)
	doc := func(keys ...string) string {
		var b strings.Builder
		b.WriteString(`<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">`)
		for _, k := range keys {
			b.WriteString("<Object><Key>" + k + "</Key></Object>")
		}
		return b.String() + "</Delete>"
	}
	many := make([]string, 1001)
	for i := range many {
		many[i] = fmt.Sprintf("allowed/%d", i)
	}
	tests := []struct {
		name    string
		body    string
		chunked []string // the body's parts, sent aws-chunked; body is unused then
		code    string
	}{
		{name: "inside", body: doc("allowed/a", "incoming/b")},
		{name: "outside", body: doc("allowed/a", "private/victim.txt"), code: "AccessDenied"},
		{name: "chunked inside", chunked: []string{doc("allowed/a")[:30], doc("allowed/a")[30:]}},
		{name: "chunk boundary inside a CDATA end", code: "AccessDenied", chunked: []string{
			`<Delete><Object><Key><![CDATA[allowed/a]]`,
			`></Key></Object><Object><Key>private/victim.txt</Key></Object><Object><Key><![CDATA[allowed/b]]></Key></Object></Delete>`}},
		{name: "CDATA key outside", body: `<Delete><Object><Key><![CDATA[private/x]]></Key></Object></Delete>`, code: "AccessDenied"},
		{name: "two keys in one object", body: `<Delete><Object><Key>allowed/a</Key><Key>private/x</Key></Object></Delete>`, code: "MalformedXML"},
		{name: "no key", body: `<Delete><Object><VersionId>1</VersionId></Object></Delete>`, code: "MalformedXML"},
		{name: "comment in a key", body: `<Delete><Object><Key>allowed/<!-- -->../private/x</Key></Object></Delete>`, code: "MalformedXML"},
		{name: "dot segments in a key", body: doc("allowed/../private/x"), code: "MalformedXML"},
		{name: "doctype", body: `<!DOCTYPE d [<!ENTITY e "private/x">]><Delete><Object><Key>allowed/a</Key></Object></Delete>`, code: "MalformedXML"},
		{name: "other namespace", body: `<Delete xmlns:x="urn:x"><Object><x:Key>private/x</x:Key><Key>allowed/a</Key></Object></Delete>`, code: "MalformedXML"},
		{name: "nested object", body: `<Delete><Wrapper><Object><Key>private/x</Key></Object></Wrapper></Delete>`, code: "MalformedXML"},
		{name: "second root", body: doc("allowed/a") + doc("private/x"), code: "MalformedXML"},
		{name: "element in a key", body: `<Delete><Object><Key>allowed/<b>x</b></Key></Object></Delete>`, code: "MalformedXML"},
		{name: "more than 1000 keys", body: doc(many...), code: "MalformedXML"},
		{name: "not xml", body: "allowed/a", code: "MalformedXML"},
		{name: "too large", body: doc("allowed/a") + strings.Repeat(" ", maxDeleteBody), code: "MalformedXML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := tt.body
			r := serverRequest("POST", "/photos?delete", "")
			if tt.chunked != nil {
				var n int
				body, n = awsChunked(tt.chunked...)
				r.Header.Set("Content-Encoding", "aws-chunked")
				r.Header.Set("X-Amz-Content-Sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
				r.Header.Set("X-Amz-Decoded-Content-Length", fmt.Sprint(n))
			}
			r.Body, r.ContentLength = io.NopCloser(strings.NewReader(body)), int64(len(body))
			p, err := h.decide(r, tbl, "id")
			switch {
			case tt.code == "" && err != nil:
				t.Fatalf("refused: %s %s", err.Code, err.Message)
			case tt.code != "" && err == nil:
				t.Fatal("accepted")
			case tt.code != "" && err.Code != tt.code:
				t.Fatalf("got %s (%s), want %s", err.Code, err.Message, tt.code)
			case tt.code == "" && (p.body.checked == nil || strings.Contains(string(p.body.checked), "\r\n")):
				t.Errorf("planned body %q, want the decoded document", p.body.checked)
			}
		})
	}

	t.Run("budget", func(t *testing.T) {
		if !h.deletes.TryAcquire(deleteBudget) {
			t.Fatal("budget taken")
		}
		defer h.deletes.Release(deleteBudget)
		body := doc("allowed/a")
		r := serverRequest("POST", "/photos?delete", body)
		if _, err := h.decide(r, tbl, "id"); err == nil || err.Code != "SlowDown" || err.Status != 503 {
			t.Fatalf("got %v, want 503 SlowDown while the budget is used up", err)
		}
	})
}

// TestDecideClients: client identities go through the same policy: a client's buckets,
// read-only access and prefixes, for requests, copy sources and DeleteObjects keys alike.
func TestDecideClients(t *testing.T) {
	h, tbl := planTable(t, true)
	sign := func(r *http.Request, id, secret string, body string) {
		sum := "UNSIGNED-PAYLOAD"
		r.Header.Set("X-Amz-Content-Sha256", sum)
		if err := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).SignHTTP(t.Context(),
			aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}, r, sum, "s3", "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	deleteDoc := func(k string) string { return "<Delete><Object><Key>" + k + "</Key></Object></Delete>" }
	tests := []struct {
		name, client, method, target, copy, body, code string
	}{
		{name: "web inside both prefixes", client: "web", method: "PUT", target: "/photos/incoming/a"},
		{name: "web inside the route's only", client: "web", method: "PUT", target: "/photos/allowed/a", code: "AccessDenied"},
		{name: "web on an open route, outside its own", client: "web", method: "GET", target: "/open/x", code: "AccessDenied"},
		{name: "web on a bucket not its own", client: "web", method: "GET", target: "/frozen/x", code: "AccessDenied"},
		{name: "web on an unrouted bucket: not revealed", client: "web", method: "GET", target: "/nothere/x", code: "AccessDenied"},
		{name: "web lists its prefix", client: "web", method: "GET", target: "/open?list-type=2&prefix=incoming/"},
		{name: "web bucket acl", client: "web", method: "GET", target: "/open?acl&prefix=incoming/", code: "AccessDenied"},
		{name: "web copies from outside", client: "web", method: "PUT", target: "/open/incoming/c", copy: "/open/private/p", code: "AccessDenied"},
		{name: "web copies inside", client: "web", method: "PUT", target: "/open/incoming/c", copy: "/open/incoming/p"},
		{name: "web deletes outside", client: "web", method: "POST", target: "/open?delete", body: deleteDoc("private/x"), code: "AccessDenied"},
		{name: "web deletes inside", client: "web", method: "POST", target: "/open?delete", body: deleteDoc("incoming/x")},
		{name: "read-only client writes", client: "ro", method: "PUT", target: "/open/x", code: "AccessDenied"},
		{name: "read-only client reads", client: "ro", method: "GET", target: "/open/x"},
	}
	keys := map[string][2]string{"web": {"web-key", "web-secret"}, "ro": {"ro-key", "ro-secret"}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := serverRequest(tt.method, tt.target, tt.body)
			if tt.body == "" {
				r.Body, r.ContentLength = http.NoBody, 0
			} else {
				sum := md5.Sum([]byte(tt.body))
				r.Header.Set("Content-Md5", base64.StdEncoding.EncodeToString(sum[:]))
			}
			if tt.copy != "" {
				r.Header.Set("X-Amz-Copy-Source", tt.copy)
			}
			k := keys[tt.client]
			sign(r, k[0], k[1], tt.body)
			_, err := h.decide(r, tbl, "id")
			switch {
			case tt.code == "" && err != nil:
				t.Fatalf("refused: %s %s", err.Code, err.Message)
			case tt.code != "" && (err == nil || err.Code != tt.code):
				t.Fatalf("got %v, want %s", err, tt.code)
			}
		})
	}
}

// TestClassify: every request has exactly one action, read from what is sent.
func TestClassify(t *testing.T) {
	tests := []struct {
		method, bucket, key, query string
		copying                    bool
		want                       action
	}{
		{"GET", "", "", "", false, actListBuckets},
		{"GET", "b", "", "location", false, actGetBucketLocation},
		{"GET", "b", "", "location&prefix=a", false, actBucketRead},
		{"GET", "b", "", "list-type=2&prefix=a&x-id=ListObjectsV2", false, actListObjectsV2},
		{"GET", "b", "", "encoding-type=url", false, actListObjects},
		{"GET", "b", "", "acl", false, actBucketRead},
		{"GET", "b", "", "versions&acl", false, actBucketRead},
		{"PUT", "b", "", "", false, actBucketWrite},
		{"POST", "b", "", "delete", false, actDeleteObjects},
		{"POST", "b", "", "delete&acl", false, actBucketWrite},
		{"POST", "b", "", "", false, actBucketWrite},
		{"OPTIONS", "b", "k", "", false, actPreflight},
		{"GET", "b", "k", "response-content-type=text%2Fplain&versionId=1", false, actGetObject},
		{"GET", "b", "k", "uploadId=u", false, actListParts},
		{"GET", "b", "k", "attributes", false, actObjectRead},
		{"PUT", "b", "k", "x-id=PutObject", false, actPutObject},
		{"PUT", "b", "k", "", true, actCopyObject},
		{"PUT", "b", "k", "partNumber=2&uploadId=u", true, actUploadPartCopy},
		{"PUT", "b", "k", "acl", false, actObjectWrite},
		{"DELETE", "b", "k", "versionId=1", false, actDeleteObject},
		{"DELETE", "b", "k", "uploadId=u", false, actAbortMultipartUpload},
		{"DELETE", "b", "k", "tagging", false, actObjectWrite},
		{"POST", "b", "k", "uploads", false, actCreateMultipartUpload},
		{"POST", "b", "k", "uploadId=u", false, actCompleteMultipartUpload},
		{"POST", "b", "k", "restore", false, actObjectWrite},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.bucket+"/"+tt.key+"?"+tt.query, func(t *testing.T) {
			q, err := parseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			if got := classify(tt.method, tt.bucket, tt.key, q, tt.copying); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// serverRequest is a request as signet's server hands it over, path style on localhost.
func serverRequest(method, target, body string) *http.Request {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	r.Host = "localhost"
	return r
}
