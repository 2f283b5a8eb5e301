package proxy

import (
	"net/http"
	"net/url"
)

// action is the S3 operation a request performs, named as AWS names it. Access is decided
// by action (see authorize), so every request is given exactly one.
type action string

const (
	actListBuckets             action = "ListBuckets"
	actHeadBucket              action = "HeadBucket"
	actGetBucketLocation       action = "GetBucketLocation"
	actListObjects             action = "ListObjects"
	actListObjectsV2           action = "ListObjectsV2"
	actListObjectVersions      action = "ListObjectVersions"
	actListMultipartUploads    action = "ListMultipartUploads"
	actDeleteObjects           action = "DeleteObjects"
	actBucketRead              action = "bucket configuration read" // ?acl, ?policy, ?versioning, ...
	actBucketWrite             action = "bucket change"             // CreateBucket, DeleteBucket, PUT ?cors, ...
	actGetObject               action = "GetObject"
	actHeadObject              action = "HeadObject"
	actPutObject               action = "PutObject"
	actCopyObject              action = "CopyObject"
	actDeleteObject            action = "DeleteObject"
	actCreateMultipartUpload   action = "CreateMultipartUpload"
	actUploadPart              action = "UploadPart"
	actUploadPartCopy          action = "UploadPartCopy"
	actCompleteMultipartUpload action = "CompleteMultipartUpload"
	actAbortMultipartUpload    action = "AbortMultipartUpload"
	actListParts               action = "ListParts"
	actObjectRead              action = "object subresource read"   // ?acl, ?tagging, ?attributes, ...
	actObjectWrite             action = "object subresource change" // PUT ?tagging, POST ?restore, ...
	actPreflight               action = "OPTIONS"                   // a browser's CORS preflight
	actPresign                 action = "presign"                   // signet's own endpoint
)

// isListing reports whether a lists keys (and so must ask for a prefix on scoped routes).
func (a action) isListing() bool {
	switch a {
	case actListObjects, actListObjectsV2, actListObjectVersions, actListMultipartUploads:
		return true
	}
	return false
}

// onObject reports whether a acts on the object the request's key names.
func (a action) onObject() bool {
	switch a {
	case actGetObject, actHeadObject, actPutObject, actCopyObject, actDeleteObject, actCreateMultipartUpload,
		actUploadPart, actUploadPartCopy, actCompleteMultipartUpload, actAbortMultipartUpload, actListParts,
		actObjectRead, actObjectWrite, actPreflight:
		return true
	}
	return false
}

// r2Name is a's name in R2's list of actions a locally minted credential can be narrowed to
// (config.R2Actions), or "" when R2 has none for it.
func (a action) r2Name() string {
	switch a {
	case actListObjects:
		return "ListObjectsV1"
	case actHeadBucket, actBucketRead, actBucketWrite, actObjectRead, actObjectWrite, actPreflight, actListBuckets,
		actListObjectVersions, actPresign:
		return ""
	}
	return string(a)
}

// neutralParams may come with any request without changing what it does: the SDKs add
// x-id to name the operation.
var neutralParams = map[string]bool{"x-id": true}

// listingParams are the query parameters of the listing operations.
var listingParams = map[string]bool{
	"list-type": true, "prefix": true, "delimiter": true, "max-keys": true, "marker": true,
	"continuation-token": true, "start-after": true, "fetch-owner": true, "encoding-type": true,
	"versions": true, "key-marker": true, "version-id-marker": true, "uploads": true,
	"upload-id-marker": true, "max-uploads": true, "allow-unordered": true,
}

// objectReadParams change how an object is read, not which object or subresource.
var objectReadParams = map[string]bool{
	"versionId": true, "partNumber": true, "response-content-type": true, "response-content-language": true,
	"response-expires": true, "response-cache-control": true, "response-content-disposition": true,
	"response-content-encoding": true,
}

// onlyParams reports whether every parameter of q is neutral or in allowed.
func onlyParams(q url.Values, allowed map[string]bool) bool {
	for k := range q {
		if !neutralParams[k] && !allowed[k] {
			return false
		}
	}
	return true
}

// classify names the action of a request with method m on bucket and key, with query q
// (as it will be sent) and a copy source or not. It reads nothing else: the decision is
// made on what is forwarded.
func classify(m, bucket, key string, q url.Values, copying bool) action {
	has := func(p string) bool { _, ok := q[p]; return ok }
	switch {
	case bucket == "":
		return actListBuckets
	case key == "":
		switch m {
		case http.MethodHead:
			if onlyParams(q, nil) {
				return actHeadBucket
			}
			return actBucketRead // HEAD ?policy and the like: a subresource, not HeadBucket
		case http.MethodOptions:
			return actPreflight
		case http.MethodGet:
			switch {
			case has("location") && len(q) == 1:
				return actGetBucketLocation
			case !onlyParams(q, listingParams):
				return actBucketRead
			case has("versions"):
				return actListObjectVersions
			case has("uploads"):
				return actListMultipartUploads
			case q.Get("list-type") == "2":
				return actListObjectsV2
			}
			return actListObjects
		case http.MethodPost:
			if has("delete") && onlyParams(q, map[string]bool{"delete": true}) {
				return actDeleteObjects
			}
		}
		return actBucketWrite
	}
	switch m {
	case http.MethodGet:
		switch {
		case has("uploadId"):
			return actListParts
		case onlyParams(q, objectReadParams):
			return actGetObject
		}
		return actObjectRead
	case http.MethodHead:
		return actHeadObject
	case http.MethodOptions:
		return actPreflight
	case http.MethodPut:
		switch {
		case has("uploadId") && copying:
			return actUploadPartCopy
		case has("uploadId"):
			return actUploadPart
		case !onlyParams(q, nil):
			return actObjectWrite
		case copying:
			return actCopyObject
		}
		return actPutObject
	case http.MethodDelete:
		switch {
		case has("uploadId"):
			return actAbortMultipartUpload
		case onlyParams(q, map[string]bool{"versionId": true}):
			return actDeleteObject
		}
		return actObjectWrite
	case http.MethodPost:
		switch {
		case has("uploads"):
			return actCreateMultipartUpload
		case has("uploadId"):
			return actCompleteMultipartUpload
		}
	}
	return actObjectWrite
}

// writes reports whether a request with method m changes anything upstream.
func writes(m string) bool {
	return m != http.MethodGet && m != http.MethodHead && m != http.MethodOptions
}
