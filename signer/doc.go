// Package signer re-signs S3 requests with AWS Signature Version 4 and decodes aws-chunked
// request bodies, on top of github.com/aws/aws-sdk-go-v2/aws/signer/v4.
//
// [Strip] removes everything a client sent as authentication; [EscapePath] spells an object
// key the way S3 servers rebuild it; [Signer.Sign] signs a request with UNSIGNED-PAYLOAD
// or STREAMING-UNSIGNED-PAYLOAD-TRAILER.
//
// # aws-chunked bodies
//
// [ChunkedReader] decodes any aws-chunked framing and verifies it, holding the payload's last
// byte back until the trailer checksum matched. [TrailerFramer] frames that payload again as
// STREAMING-UNSIGNED-PAYLOAD-TRAILER with the verified checksum as its trailer, with a length
// ([FramedLength]) known before the first byte: a trailer checksum can reach an upstream only
// in a trailer, since it is known only at the end of the body, and R2 refuses chunk-signed
// bodies and bodies without a Content-Length.
//
// # One v4 signer per set of credentials
//
// The SDK's signer caches derived signing keys by access key id and day only, never by the
// secret. R2 credentials minted locally keep the parent's access key id with a new secret
// each time, so a shared v4.Signer would go on signing with the old secret's key.
// [Signer] keeps one v4.Signer per distinct credential set instead.
//
// # Paths
//
// Servers rebuild the canonical URI from the decoded key, percent-encoding every byte but
// A-Z a-z 0-9 - _ . ~ and '/'. Forwarding a client's raw path, or Go's own escaping (which
// leaves $&+,;=:@ alone), makes keys with those characters fail with SignatureDoesNotMatch.
//
// # Headers
//
// The SDK signs every header except Authorization, User-Agent, X-Amzn-Trace-Id, Expect and
// Transfer-Encoding, and does not set X-Amz-Content-Sha256 itself. Content-Length is signed
// only when positive. Go canonicalises incoming header names, so x-amz-meta-* names are
// lowercased again before forwarding: some servers store the case they receive.
//
// # Verifying client signatures
//
// [Verifier] checks the signatures of signet's own client identities by recomputing them
// with the SDK's signer over a fresh request that holds only what the client signed (the
// path re-encoded with EscapePath, the query without X-Amz-Signature, the signed headers
// under lowercase keys, so that even headers the SDK never signs are covered). It runs on
// the untouched inbound request, before Strip and before the body is read; the body's own
// proofs (a hex payload hash, chunk and trailer signatures) are checked as it streams.
package signer
