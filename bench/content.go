package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
)

// contentBlock is the period of an object's content.
const contentBlock = 64 << 10

// content is the deterministic body of an object of a given size. The harness, the null
// upstream and the checker all derive it from the size alone, so every GET body is checked
// byte for byte without keeping a copy of a 1 GiB object anywhere.
//
// Layout: contentBlock-sized blocks of one pseudo-random pattern (ChaCha8 keyed by the
// size), each block's first 8 bytes replaced by a stamp derived from the block's index. A
// body that is shifted, truncated, or has blocks repeated, dropped or swapped fails the
// check; producing and checking it runs at memory speed.
type content struct {
	size    int64
	seed    uint64
	pattern []byte // contentBlock bytes
}

func newContent(size int64) *content {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:8], uint64(size))
	copy(key[8:], "signet bench content")
	g := rand.NewChaCha8(key)
	c := &content{size: size, pattern: make([]byte, contentBlock)}
	_, _ = g.Read(c.pattern) // ChaCha8.Read never fails
	c.seed = g.Uint64()
	return c
}

// stamp is the word that replaces the first 8 bytes of block b.
func (c *content) stamp(b int64) [8]byte {
	var w [8]byte
	binary.LittleEndian.PutUint64(w[:], c.seed^uint64(b+1)*0x9E3779B97F4A7C15)
	return w
}

// fill writes the content's bytes at off into p; off+len(p) must not pass the size.
func (c *content) fill(p []byte, off int64) {
	for len(p) > 0 {
		in := int(off % contentBlock)
		n := copy(p, c.pattern[in:])
		if in < 8 {
			w := c.stamp(off / contentBlock)
			copy(p[:min(n, 8-in)], w[in:])
		}
		p, off = p[n:], off+int64(n)
	}
}

// bytes returns the whole content; only for small objects.
func (c *content) bytes() []byte {
	b := make([]byte, c.size)
	c.fill(b, 0)
	return b
}

// mismatch returns the index of the first byte of p that differs from the content at off,
// or -1 when p matches.
func (c *content) mismatch(p []byte, off int64) int {
	done := 0
	for done < len(p) {
		in := int(off % contentBlock)
		n := min(len(p)-done, contentBlock-in)
		seg := p[done : done+n]
		want := c.pattern[in : in+n]
		if in < 8 {
			w := c.stamp(off / contentBlock)
			k := min(n, 8-in)
			if i := firstDiff(seg[:k], w[in:in+k]); i >= 0 {
				return done + i
			}
			seg, want = seg[k:], want[k:]
			if !bytes.Equal(seg, want) {
				return done + k + firstDiff(seg, want)
			}
		} else if !bytes.Equal(seg, want) {
			return done + firstDiff(seg, want)
		}
		done += n
		off += int64(n)
	}
	return -1
}

func firstDiff(a, b []byte) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// contentReader reads a content from its start: the body of a large PUT.
type contentReader struct {
	c   *content
	off int64
}

func (r *contentReader) Read(p []byte) (int, error) {
	if r.off >= r.c.size {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.c.size-r.off)]
	r.c.fill(p, r.off)
	r.off += int64(len(p))
	return len(p), nil
}

// checker is an io.Writer that verifies what is written against a content, from its start.
type checker struct {
	c   *content
	off int64
}

func (k *checker) Write(p []byte) (int, error) {
	if k.off+int64(len(p)) > k.c.size {
		return 0, fmt.Errorf("body is longer than the object's %d bytes", k.c.size)
	}
	if i := k.c.mismatch(p, k.off); i >= 0 {
		return 0, fmt.Errorf("body differs from the object's content at byte %d", k.off+int64(i))
	}
	k.off += int64(len(p))
	return len(p), nil
}

// finish reports a body that ended early.
func (k *checker) finish() error {
	if k.off != k.c.size {
		return fmt.Errorf("body ended after %d of %d bytes", k.off, k.c.size)
	}
	return nil
}

// objectKey names the object whose content is newContent(size): the null upstream serves
// any such key, and versitygw gets them uploaded before the first measurement.
func objectKey(size int64) string { return "obj-" + strconv.FormatInt(size, 10) }

// sizeFromKey is objectKey's inverse.
func sizeFromKey(key string) (int64, bool) {
	s, ok := strings.CutPrefix(key, "obj-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n >= 0
}
