package proxy

import (
	"bytes"
	"io"
	"mime"
	"net/http"
)

// renameResponse makes the XML answer of a renamed route name the bucket as the client
// does: listings (<Name>), multipart uploads (<Bucket>) and errors (<BucketName>) name the
// upstream bucket, which a client cannot use through signet. The body is rewritten as it
// streams; when the names differ in length the Content-Length is dropped, and the body goes
// out chunked.
func renameResponse(resp *http.Response, upstream, local string) {
	if resp.Body == nil || resp.Body == http.NoBody || upstream == local {
		return
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/xml" && mt != "text/xml" {
		return
	}
	var pairs [][2][]byte
	for _, tag := range []string{"Name", "Bucket", "BucketName"} {
		pairs = append(pairs, [2][]byte{
			[]byte("<" + tag + ">" + upstream + "</" + tag + ">"),
			[]byte("<" + tag + ">" + local + "</" + tag + ">"),
		})
	}
	resp.Body = &replacingBody{src: resp.Body, closer: resp.Body, pairs: pairs, longest: len(pairs[2][0])}
	if len(upstream) != len(local) {
		resp.ContentLength = -1
		resp.Header.Del("Content-Length")
	}
}

// replacingBody replaces whole occurrences of each pair's first string with its second as
// it streams. It holds back fewer bytes than the longest string to find, so that a match
// split across reads is still seen whole.
type replacingBody struct {
	src     io.Reader
	closer  io.Closer
	pairs   [][2][]byte
	longest int

	in     []byte // read, not yet scanned to the end
	out    []byte // scanned, not yet returned
	outBuf []byte // out's storage, reused
	err    error  // src's, once it has ended
}

// replaceChunk is how much a replacingBody reads at a time.
const replaceChunk = 32 << 10

func (b *replacingBody) Read(p []byte) (int, error) {
	for len(b.out) == 0 {
		if b.err != nil {
			return 0, b.err
		}
		if b.in == nil {
			b.in = make([]byte, 0, replaceChunk+b.longest)
		}
		n, err := b.src.Read(b.in[len(b.in) : len(b.in)+replaceChunk])
		b.in = b.in[:len(b.in)+n]
		b.err = err
		b.scan()
	}
	n := copy(p, b.out)
	b.out = b.out[n:]
	return n, nil
}

// scan moves to out what of in can no longer be part of an unseen match, replaced: all of it
// once src has ended. A match starting before limit ends within in, so it is found whole.
func (b *replacingBody) scan() {
	limit := len(b.in) - (b.longest - 1)
	if b.err != nil {
		limit = len(b.in)
	}
	out := b.outBuf[:0]
	i := 0
	for i < limit {
		j, k := b.next(i)
		if j < 0 || j >= limit {
			break
		}
		out = append(out, b.in[i:j]...)
		out = append(out, b.pairs[k][1]...)
		i = j + len(b.pairs[k][0])
	}
	if i < limit {
		out = append(out, b.in[i:limit]...)
		i = limit
	}
	b.outBuf, b.out = out, out
	b.in = append(b.in[:0], b.in[i:]...)
}

// next finds the first match at or after i: its position and pair, or -1.
func (b *replacingBody) next(i int) (at, pair int) {
	at = -1
	for k, pr := range b.pairs {
		if j := bytes.Index(b.in[i:], pr[0]); j >= 0 && (at < 0 || i+j < at) {
			at, pair = i+j, k
		}
	}
	return at, pair
}

func (b *replacingBody) Close() error { return b.closer.Close() }
