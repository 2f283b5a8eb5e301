package proxy

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"strings"
)

// DeleteObjects limits: S3 takes at most 1000 keys of at most 1024 bytes each, which with
// the XML around them and escaping fits well within maxDeleteBody.
const (
	maxDeleteKeys = 1000
	maxDeleteBody = 2 << 20
	// deleteBudget bounds the memory all DeleteObjects bodies held for checking take at once.
	deleteBudget = 32 << 20
)

// s3Namespace is the namespace S3's request documents may declare.
const s3Namespace = "http://s3.amazonaws.com/doc/2006-03-01/"

// readDeleteBody reads a DeleteObjects body, decoded and verified as it will be sent, up to
// maxDeleteBody, growing only as bytes arrive.
func readDeleteBody(body io.Reader) ([]byte, *s3Error) {
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(body, maxDeleteBody+1))
	if err != nil {
		return nil, bodyS3Error(err, "IncompleteBody", "the DeleteObjects body could not be read")
	}
	if n > maxDeleteBody {
		return nil, &s3Error{Status: http.StatusBadRequest, Code: "MalformedXML", Message: "a DeleteObjects body is at most 2 MiB"}
	}
	return buf.Bytes(), nil
}

// deleteKeys returns the keys a DeleteObjects document names. The document must have
// exactly S3's shape: a Delete root holding an optional Quiet and Object elements, each
// Object exactly one Key and optionally VersionId, ETag, LastModifiedTime and Size, all
// plain text. Anything else (a second Key, unknown or nested elements, comments, DTDs,
// another namespace) is refused: parsers differ in how they read it, and signet must read
// the keys exactly as the upstream does.
func deleteKeys(doc []byte) ([]string, *s3Error) {
	malformed := func(msg string) ([]string, *s3Error) {
		return nil, &s3Error{Status: http.StatusBadRequest, Code: "MalformedXML", Message: "DeleteObjects body: " + msg}
	}
	dec := xml.NewDecoder(bytes.NewReader(doc))
	var (
		stack []string // open elements
		keys  []string
		text  strings.Builder
		keyN  int // Keys in the current Object
		ended bool
	)
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return malformed("not well-formed XML")
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if ended {
				return malformed("content after the Delete element")
			}
			if t.Name.Space != "" && t.Name.Space != s3Namespace {
				return malformed("element " + quote(t.Name.Local) + " is in namespace " + quote(t.Name.Space))
			}
			for _, a := range t.Attr {
				if a.Name.Space != "xmlns" && a.Name.Local != "xmlns" {
					return malformed("attribute " + quote(a.Name.Local) + " on " + quote(t.Name.Local))
				}
			}
			parent := ""
			if len(stack) > 0 {
				parent = stack[len(stack)-1]
			}
			switch {
			case parent == "" && t.Name.Local == "Delete":
			case parent == "Delete" && (t.Name.Local == "Object" || t.Name.Local == "Quiet"):
				keyN = 0
			case parent == "Object" && t.Name.Local == "Key":
				if keyN++; keyN > 1 {
					return malformed("an Object has more than one Key")
				}
			case parent == "Object" && (t.Name.Local == "VersionId" || t.Name.Local == "ETag" || t.Name.Local == "LastModifiedTime" || t.Name.Local == "Size"):
			default:
				return malformed("unexpected element " + quote(t.Name.Local))
			}
			stack = append(stack, t.Name.Local)
			text.Reset()
		case xml.EndElement:
			name := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			switch name {
			case "Key":
				keys = append(keys, text.String())
				if len(keys) > maxDeleteKeys {
					return malformed("more than 1000 keys")
				}
			case "Object":
				if keyN != 1 {
					return malformed("an Object has no Key")
				}
			case "Delete":
				ended = true
			}
			text.Reset()
		case xml.CharData:
			if len(stack) == 0 || stack[len(stack)-1] == "Delete" || stack[len(stack)-1] == "Object" {
				if len(bytes.TrimSpace(t)) > 0 {
					return malformed("text outside the elements that hold it")
				}
				continue
			}
			text.Write(t)
		case xml.Comment:
			return malformed("comments are refused")
		case xml.Directive:
			return malformed("DTDs and directives are refused")
		case xml.ProcInst:
			if t.Target != "xml" || len(stack) > 0 || ended {
				return malformed("processing instructions are refused")
			}
		}
	}
	if !ended {
		return malformed("no Delete element")
	}
	for _, k := range keys {
		if err := checkKey(k); err != nil {
			return malformed("key " + quote(k) + ": " + err.Message)
		}
	}
	return keys, nil
}
