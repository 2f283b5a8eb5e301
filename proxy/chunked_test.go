package proxy_test

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"
	"hash/crc32"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// unsignedTrailerBody frames payload as STREAMING-UNSIGNED-PAYLOAD-TRAILER in chunks of
// chunkSize with a CRC32 trailer of crc (the right one when crc is nil).
func unsignedTrailerBody(payload []byte, chunkSize int, crc []byte) []byte {
	var b bytes.Buffer
	for off := 0; off < len(payload); off += chunkSize {
		end := min(off+chunkSize, len(payload))
		fmt.Fprintf(&b, "%x\r\n", end-off)
		b.Write(payload[off:end])
		b.WriteString("\r\n")
	}
	if crc == nil {
		crc = binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(payload))
	}
	fmt.Fprintf(&b, "0\r\nx-amz-checksum-crc32:%s\r\n\r\n", base64.StdEncoding.EncodeToString(crc))
	return b.Bytes()
}

func chunkedRequest(t *testing.T, url string, body []byte, decodedLen int, knownLength bool) *http.Request {
	t.Helper()
	var r io.Reader = bytes.NewReader(body)
	if !knownLength {
		r = io.MultiReader(r) // hides the length: sent with Transfer-Encoding: chunked
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, url, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Encoding", "aws-chunked")
	req.Header.Set("X-Amz-Content-Sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
	req.Header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(decodedLen))
	req.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
	return req
}

// backendFile reads an object straight from versitygw's data directory: no S3 layer
// between, so any framing stored inside the object shows.
func (e *env) backendFile(t *testing.T, bucket, key string) ([]byte, bool) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.gw.DataDir, bucket, key))
	if os.IsNotExist(err) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return b, true
}

func TestChunkedUploads(t *testing.T) {
	e := newEnv(t, "")
	e.mkBuckets(t, "alpha")
	payload := bytes.Repeat([]byte("0123456789abcdef"), 40000) // 640,000 bytes

	t.Run("minio-go chunk-signed", func(t *testing.T) {
		mc, err := minio.New(strings.TrimPrefix(e.signet.URL, "http://"), &minio.Options{
			Creds: miniocreds.NewStaticV4("dummy", "dummy", ""), Region: "us-east-1", TrailingHeaders: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			opts minio.PutObjectOptions
		}{
			{"signed chunks", minio.PutObjectOptions{}},
			{"signed chunks with a checksum trailer", minio.PutObjectOptions{AutoChecksum: minio.ChecksumCRC32C, Checksum: minio.ChecksumCRC32C}},
		} {
			key := "minio-" + strings.ReplaceAll(tc.name, " ", "-")
			if _, err := mc.PutObject(t.Context(), "alpha", key, bytes.NewReader(payload), int64(len(payload)), tc.opts); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if got, _ := e.backendFile(t, "alpha", key); !bytes.Equal(got, payload) {
				t.Errorf("%s: the backend holds %d bytes, want the %d-byte payload", tc.name, len(got), len(payload))
			}
		}
	})

	t.Run("unsigned trailer with and without content-length", func(t *testing.T) {
		for _, known := range []bool{true, false} {
			key := "trailer-" + strconv.FormatBool(known)
			req := chunkedRequest(t, e.signet.URL+"/alpha/"+key, unsignedTrailerBody(payload, 65536, nil), len(payload), known)
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("length known %v: %d %s", known, resp.StatusCode, msg)
			}
			if got, _ := e.backendFile(t, "alpha", key); !bytes.Equal(got, payload) {
				t.Errorf("length known %v: backend holds %d bytes", known, len(got))
			}
		}
	})

	t.Run("empty aws-chunked object", func(t *testing.T) {
		req := chunkedRequest(t, e.signet.URL+"/alpha/empty-chunked", unsignedTrailerBody(nil, 1, nil), 0, true)
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got, ok := e.backendFile(t, "alpha", "empty-chunked"); resp.StatusCode != 200 || !ok || len(got) != 0 {
			t.Errorf("%d, stored %v %d bytes", resp.StatusCode, ok, len(got))
		}
	})
}

// TestCorruptChunkedUploadsStoreNothing: each broken body gets a 4xx S3 error, a new key
// stays absent, and an overwritten key keeps its previous version.
func TestCorruptChunkedUploadsStoreNothing(t *testing.T) {
	e := newEnv(t, "")
	e.mkBuckets(t, "alpha")
	payload := bytes.Repeat([]byte("payload!"), 50000) // 400,000 bytes
	good := unsignedTrailerBody(payload, 65536, nil)
	flipped := bytes.Clone(good)
	flipped[len(good)/2] ^= 1 // one payload byte

	tests := []struct {
		name       string
		body       []byte
		decodedLen int
		status     int
		code       string
	}{
		{"one payload byte flipped", flipped, len(payload), 400, "BadDigest"},
		{"wrong checksum", unsignedTrailerBody(payload, 65536, []byte{1, 2, 3, 4}), len(payload), 400, "BadDigest"},
		{"body truncated", good[:len(good)/2], len(payload), 400, "IncompleteBody"},
		{"declared length too long", good, len(payload) + 10, 400, "IncompleteBody"},
		{"declared length too short", good, len(payload) - 10, 400, "IncompleteBody"},
		{"garbage framing", append([]byte("zz\r\n"), good...), len(payload), 400, "InvalidChunkSizeError"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, key := range []string{"new", "old"} {
				key := strings.ReplaceAll(tt.name, " ", "-") + "-" + key
				if strings.HasSuffix(key, "-old") {
					put(t, e.s3, "alpha", key, []byte("previous version"))
				}
				req := chunkedRequest(t, e.signet.URL+"/alpha/"+key, tt.body, tt.decodedLen, true)
				resp, err := http.DefaultTransport.RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				er := readError(t, resp)
				if resp.StatusCode != tt.status || er.Code != tt.code {
					t.Errorf("%s: got %d %+v, want %d %s", key, resp.StatusCode, er, tt.status, tt.code)
				}
				got, ok := e.backendFile(t, "alpha", key)
				switch {
				case strings.HasSuffix(key, "-new") && ok:
					t.Errorf("%s: a corrupt upload was stored (%d bytes)", key, len(got))
				case strings.HasSuffix(key, "-old") && string(got) != "previous version":
					t.Errorf("%s: the previous version became %d bytes", key, len(got))
				}
			}
		})
	}
}
