package proxy

import (
	"net/http"
	"path"
	"slices"
	"strings"
)

// access is one thing a request asks to do: an action on a bucket (a local name), reaching
// a key, a listing prefix, or the keys of a DeleteObjects body.
type access struct {
	action action
	write  bool
	bucket string
	key    string   // object actions
	prefix string   // listings
	keys   []string // DeleteObjects
	// extensions are the request's headers that make some server reach other keys than
	// the ones above (see keyReachingHeaders).
	extensions []string
}

// authorize decides whether client c (nil without client identities) may, through route
// rt, do a. It is the one place signet decides access: object requests, listings, copy
// sources, DeleteObjects keys, presigned URLs and ListBuckets all ask it.
func authorize(c *client, rt *Route, a access) *s3Error {
	deny := func(msg string) *s3Error {
		return &s3Error{Status: http.StatusForbidden, Code: "AccessDenied", Message: msg}
	}
	if c != nil && !c.mayUse(a.bucket) {
		return deny("client " + quote(c.name) + " may not use bucket " + quote(a.bucket))
	}
	if rt == nil {
		return &s3Error{Status: http.StatusNotFound, Code: "NoSuchBucket", Message: "bucket " + quote(a.bucket) + " is not configured in signet"}
	}
	if a.write && rt.ReadOnly {
		return deny("bucket " + quote(a.bucket) + " is read-only in signet")
	}
	if a.write && c != nil && c.readOnly {
		return deny("client " + quote(c.name) + " is read-only")
	}
	if len(rt.actions) > 0 && !rt.allows(a.action) {
		return deny("bucket " + quote(a.bucket) + " allows only " + strings.Join(rt.actions, ", ") + " in signet, not " + string(a.action))
	}
	if err := rt.scope.permits(a, "bucket "+quote(a.bucket)); err != nil {
		return err
	}
	if c != nil {
		return c.scope.permits(a, "client "+quote(c.name))
	}
	return nil
}

// scoped reports whether the route rt or the client c (nil without client identities) is
// confined to prefixes or keys: authorize then needs the keys a request names, DeleteObjects'
// included.
func scoped(c *client, rt *Route) bool {
	return !rt.scope.unrestricted() || c != nil && !c.scope.unrestricted()
}

// scope confines requests to key prefixes and exact keys (a route's or a client's). The
// zero scope allows everything. signet checks it before forwarding, besides asking for
// credentials that the upstream confines the same way: a request outside is refused here,
// with a clear error, and never sent.
type scope struct {
	prefixes, objects []string
}

func (s scope) unrestricted() bool { return len(s.prefixes) == 0 && len(s.objects) == 0 }

func (s scope) allowsKey(k string) bool {
	if s.unrestricted() {
		return true
	}
	for _, p := range s.prefixes {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return slices.Contains(s.objects, k)
}

// permits refuses a if it reaches outside the scope: an object outside it, a listing whose
// prefix is not inside it, a DeleteObjects naming a key outside it, or any other bucket-level
// request (configuration is the whole bucket's, reading it as much as changing it). what
// names whose scope it is, for the message.
func (s scope) permits(a access, what string) *s3Error {
	if s.unrestricted() {
		return nil
	}
	deny := func(msg string) *s3Error {
		return &s3Error{Status: http.StatusForbidden, Code: "AccessDenied", Message: msg + ": " + what + " is limited to " + s.describe()}
	}
	if len(a.extensions) > 0 {
		return deny("header " + a.extensions[0] + " may reach keys signet cannot check")
	}
	switch {
	case a.action.onObject():
		if !s.allowsKey(a.key) {
			return deny("the key is outside the allowed prefixes")
		}
	case a.action.isListing():
		if a.prefix == "" || len(s.prefixes) == 0 || !s.allowsKey(a.prefix) {
			return deny("a listing must ask for a prefix inside the allowed ones")
		}
	case a.action == actHeadBucket, a.action == actGetBucketLocation:
		// no keys revealed
	case a.action == actCreateBucket:
		// Clients that make sure of their bucket first (rclone, mc mb -p) take this, as
		// S3 says it to a bucket's owner, for "there already": a scoped route's bucket is
		// there as far as its clients go, and they may not create buckets.
		return &s3Error{Status: http.StatusConflict, Code: "BucketAlreadyOwnedByYou",
			Message: "bucket " + quote(a.bucket) + " is routed by signet, and " + what + " is limited to " + s.describe() + ": buckets are not created through it"}
	case a.action == actDeleteObjects:
		for _, k := range a.keys {
			if !s.allowsKey(k) {
				return deny("DeleteObjects names a key outside the allowed prefixes")
			}
		}
	default:
		return deny("only listings and object requests are allowed, not " + string(a.action))
	}
	return nil
}

func (s scope) describe() string {
	var parts []string
	for _, p := range s.prefixes {
		parts = append(parts, "prefix "+quote(p))
	}
	for _, o := range s.objects {
		parts = append(parts, "key "+quote(o))
	}
	return strings.Join(parts, ", ")
}

// mayUse reports whether c may use bucket (a local name).
func (c *client) mayUse(bucket string) bool {
	for _, b := range c.buckets {
		if ok, _ := path.Match(b, bucket); ok {
			return true
		}
	}
	return false
}

// allows reports whether a route narrowed to actions allows a. HeadBucket reveals nothing a
// route's credentials could not, and, as in IAM, GetObject covers HeadObject.
func (rt *Route) allows(a action) bool {
	switch {
	case a == actHeadBucket:
		return true
	case a == actHeadObject && slices.Contains(rt.actions, string(actGetObject)):
		return true
	}
	return slices.Contains(rt.actions, a.r2Name())
}

// keyReachingHeaders returns the names of h's headers with which some S3 server reaches
// keys other than the request's own: server extensions (MinIO's x-minio-* such as
// x-minio-force-delete, which deletes everything under the key; its snowball
// x-amz-meta-snowball-auto-extract and x-amz-meta-minio-*, which unpack an uploaded archive
// anywhere in the bucket; Ceph's x-rgw-*) and RenameObject's x-amz-rename-source. Their
// effect cannot be checked, so a scope refuses them.
var keyReachingPrefixes = []string{"x-minio-", "x-rgw-", "x-amz-meta-snowball-", "x-amz-meta-minio-", "x-amz-rename-source"}

func keyReachingHeaders(h http.Header) []string {
	var names []string
	for k := range h {
		for _, p := range keyReachingPrefixes {
			if hasPrefixFold(k, p) {
				names = append(names, strings.ToLower(k))
				break
			}
		}
	}
	slices.Sort(names)
	return names
}
