package proxy

import (
	"mime"
	"net/http"
	"slices"
	"strings"
)

// Browsers reach signet too: a signet on loopback signs for whoever connects, and a page on
// any website can make the user's browser connect. So a request a browser sent on behalf
// of another site is refused unless its origin is configured (allowed_origins), and signet
// answers CORS itself, for those origins only, whatever the upstream bucket's CORS rules
// say. Objects are served so that a browser never runs them on signet's origin, which is
// the same origin as every route.

// corsExposed are the response headers a page on an allowed origin may read.
const corsExposed = "ETag, Content-Length, Content-Range, Content-Type, Last-Modified, Accept-Ranges, " +
	"x-amz-version-id, x-amz-delete-marker, x-amz-request-id, x-amz-checksum-crc32, x-amz-checksum-crc32c, " +
	"x-amz-checksum-crc64nvme, x-amz-checksum-sha1, x-amz-checksum-sha256, x-amz-checksum-type, X-Signet-Request-Id"

// crossSite reports the origin of a cross-site browser request, or "" for a request from no
// page of another site (no Origin, and Sec-Fetch-Site absent, same-origin or none).
func crossSite(r *http.Request) (origin string, cross bool) {
	origin = r.Header.Get("Origin")
	if origin == "" {
		switch r.Header.Get("Sec-Fetch-Site") {
		case "", "same-origin", "none":
			return "", false
		}
		return "", true
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if strings.EqualFold(origin, scheme+"://"+r.Host) && r.Header.Get("Sec-Fetch-Site") != "cross-site" {
		return "", false // a page signet served itself
	}
	return origin, true
}

// checkBrowser refuses a cross-site browser request from an origin not in allowed. It
// returns the origin to answer with CORS headers, or "".
func checkBrowser(r *http.Request, allowed []string) (string, *s3Error) {
	origin, cross := crossSite(r)
	if !cross {
		return "", nil
	}
	if origin != "" && slices.Contains(allowed, origin) {
		return origin, nil
	}
	what := "a page on another site"
	if origin != "" {
		what = "a page on " + quote(origin)
	}
	return "", &s3Error{Status: http.StatusForbidden, Code: "AccessDenied",
		Message: "browser requests from " + what + " are refused: list its origin in allowed_origins to let it in"}
}

// isPreflight reports whether r is a browser's CORS preflight.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != ""
}

// corsHeaders sets the CORS answer for a request from allowed origin on h.
func corsHeaders(h http.Header, origin string) {
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Expose-Headers", corsExposed)
	h.Add("Vary", "Origin")
}

// servePreflight answers a preflight from an allowed origin: every S3 method, the headers
// it asks for.
func servePreflight(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "GET, HEAD, PUT, POST, DELETE")
	if rh := r.Header.Get("Access-Control-Request-Headers"); rh != "" {
		h.Set("Access-Control-Allow-Headers", rh)
	}
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusOK)
}

// activeContentType reports whether a browser would run content served as media type v
// (HTML, SVG, XML with its stylesheets and scripts, JavaScript), or v cannot be read.
func activeContentType(v string) bool {
	mt, _, err := mime.ParseMediaType(v)
	if err != nil {
		return true
	}
	for _, s := range []string{"html", "xml", "svg", "javascript", "ecmascript", "xsl", "multipart/x-mixed-replace", "application/pdf"} {
		if strings.Contains(mt, s) {
			return true
		}
	}
	return false
}

// browserSafety is set on every answer: browsers must not guess a type other than the one
// sent, nor run what signet serves with the rights of its origin.
func browserSafety(h http.Header) {
	// Canonical keys written directly, and both values in one allocation (as Header.Clone
	// does): set on every answer, Header.Set's canonicalizing and two slices showed in
	// the per-request profile.
	v := []string{"nosniff", "sandbox"}
	h["X-Content-Type-Options"] = v[0:1:1]
	h["Content-Security-Policy"] = v[1:2:2]
}

// upstreamBrowserHeaders are the upstream's answers to browsers, which signet gives itself.
func dropUpstreamBrowserHeaders(h http.Header) {
	for k := range h {
		if strings.HasPrefix(k, "Access-Control-") || k == "X-Content-Type-Options" {
			delete(h, k)
		}
	}
}
