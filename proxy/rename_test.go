package proxy

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

func TestRenameResponse(t *testing.T) {
	const list = `<?xml version="1.0"?><ListBucketResult><Name>real-bucket</Name><Contents><Key>real-bucket/x</Key></Contents></ListBucketResult>`
	tests := []struct {
		name        string
		contentType string
		body        string
		want        string
	}{
		{"listing", "application/xml", list,
			`<?xml version="1.0"?><ListBucketResult><Name>renamed</Name><Contents><Key>real-bucket/x</Key></Contents></ListBucketResult>`},
		{"multipart", "application/xml; charset=utf-8", `<InitiateMultipartUploadResult><Bucket>real-bucket</Bucket><Key>k</Key></InitiateMultipartUploadResult>`,
			`<InitiateMultipartUploadResult><Bucket>renamed</Bucket><Key>k</Key></InitiateMultipartUploadResult>`},
		{"error", "application/xml", `<Error><Code>NoSuchBucket</Code><BucketName>real-bucket</BucketName></Error>`,
			`<Error><Code>NoSuchBucket</Code><BucketName>renamed</BucketName></Error>`},
		{"a key that merely looks like it", "application/xml", `<Key>&lt;Name&gt;real-bucket</Key><Name>real-bucket-2</Name>`,
			`<Key>&lt;Name&gt;real-bucket</Key><Name>real-bucket-2</Name>`},
		{"not XML", "application/octet-stream", `<Name>real-bucket</Name>`, `<Name>real-bucket</Name>`},
		{"long body", "application/xml", strings.Repeat("<Bucket>real-bucket</Bucket>", 5000), strings.Repeat("<Bucket>renamed</Bucket>", 5000)},
	}
	for _, tt := range tests {
		for _, rd := range []struct {
			name string
			wrap func(io.Reader) io.Reader
		}{
			{"whole", func(r io.Reader) io.Reader { return r }},
			{"one byte at a time", iotest.OneByteReader},
			{"half reads", iotest.HalfReader},
		} {
			t.Run(tt.name+"/"+rd.name, func(t *testing.T) {
				resp := &http.Response{
					Header:        http.Header{"Content-Type": {tt.contentType}, "Content-Length": {strconv.Itoa(len(tt.body))}},
					ContentLength: int64(len(tt.body)),
					Body:          io.NopCloser(rd.wrap(strings.NewReader(tt.body))),
				}
				renameResponse(resp, "real-bucket", "renamed")
				got, err := io.ReadAll(iotest.OneByteReader(resp.Body)) // small reads on both sides
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != tt.want {
					t.Errorf("got  %.300s\nwant %.300s", got, tt.want)
				}
				if changed := tt.want != tt.body; changed && (resp.ContentLength != -1 || resp.Header.Get("Content-Length") != "") {
					t.Error("a rewritten body kept its Content-Length")
				}
			})
		}
	}
}

func BenchmarkRenameResponse(b *testing.B) {
	body := strings.Repeat("<Contents><Key>some/key/name.txt</Key><Size>123</Size></Contents>", 1000)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		resp := &http.Response{Header: http.Header{"Content-Type": {"application/xml"}}, Body: io.NopCloser(strings.NewReader(body))}
		renameResponse(resp, "real-bucket", "renamed")
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			b.Fatal(err)
		}
	}
}
