package proxy_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/textproto"
	"strings"
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

// TestContinueCarriesNoOwnHeaders: the upstream's 100 Continue goes to the client without
// the headers signet set for its final answer, and the final answer keeps them. A chunked
// upload gets Connection: close; on the 100 it made Node's HTTP parser fail every
// @aws-sdk/client-s3 stream upload big enough for Expect: 100-continue.
func TestContinueCarriesNoOwnHeaders(t *testing.T) {
	e := newEnv(t, "")
	e.mkBuckets(t, "alpha")
	payload := bytes.Repeat([]byte("continue"), 1<<17) // 1 MiB
	body := unsignedTrailerBody(payload, 65536, nil)
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.signet.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PUT /alpha/continued HTTP/1.1\r\nHost: %s\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n"+
		"Content-Encoding: aws-chunked\r\nX-Amz-Content-Sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER\r\n"+
		"X-Amz-Decoded-Content-Length: %d\r\nX-Amz-Trailer: x-amz-checksum-crc32\r\n\r\n", strings.TrimPrefix(e.signet.URL, "http://"), len(payload))
	br := bufio.NewReader(conn)
	tp := textproto.NewReader(br)
	status, err := tp.ReadLine()
	if err != nil {
		t.Fatal(err)
	}
	h, err := tp.ReadMIMEHeader()
	if err != nil {
		t.Fatal(err)
	}
	if status != "HTTP/1.1 100 Continue" || h.Get("Connection") != "" || h.Get("X-Signet-Request-Id") != "" {
		t.Fatalf("first answer %q %v, want a bare 100 Continue", status, h)
	}
	fmt.Fprintf(conn, "%x\r\n%s\r\n0\r\n\r\n", len(body), body)
	// Go's server may send its own 100 Continue as well when the body is first read (the
	// upstream's and its own can both go out): more than one 1xx is HTTP's to allow.
	var resp *http.Response
	for resp == nil || resp.StatusCode == http.StatusContinue {
		if resp != nil && (resp.Header.Get("Connection") != "" || resp.Header.Get("X-Signet-Request-Id") != "") {
			t.Fatalf("a 100 Continue carried signet's own headers: %v", resp.Header)
		}
		if resp, err = http.ReadResponse(br, nil); err != nil {
			t.Fatal(err)
		}
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Signet-Request-Id") == "" || !resp.Close {
		t.Errorf("final answer %d %v, want 200 with the request id and Connection: close", resp.StatusCode, resp.Header)
	}
}
