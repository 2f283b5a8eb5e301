// Package proxy is signet's S3 front door: it parses each request (path style or
// virtual-hosted style), routes it to an upstream account by bucket name, strips the
// client's authentication, re-signs it with SigV4 and forwards it, streaming both ways,
// through net/http/httputil.ReverseProxy. Its own refusals are S3 XML errors.
//
// # A request's way through
//
//	ServeHTTP
//	  decide          parse, check headers, authenticate, parse the query, classify the
//	                  action, route, authorize (one policy): an immutable plan
//	  servePresign    POST /_signet/presign: authorize the URL's request, sign it
//	  listBuckets     GET /: the buckets the client may reach
//	  forward         the body as planned (verified; aws-chunked decoded, and re-framed
//	                  with its verified checksum trailer; or the checked bytes), then
//	                  ReverseProxy:
//	    rewrite       the upstream URL, query and copy source from the plan
//	    RoundTrip     credentials, signature, one replay when refused
//	    modifyResponse / errorHandler
//	  log, metrics    from the plan and the outcome
//
// Nothing after decide derives anything from the request again: every check reads the
// request as it will be signed and sent.
//
// # Routing
//
// The upstream host always comes from the route table, never from the client's Host header
// or request line. Exact bucket names are matched before globs; among globs the first wins.
// A bucket with no route is answered by signet and never forwarded.
//
// # Signing in the transport
//
// Rewrite builds the upstream URL and headers; the signature is added by the Handler's
// transport, just before the request leaves, because fetching credentials can fail and
// Rewrite has no way to report an error: failures then reach ErrorHandler like any other
// upstream error. What is signed is exactly what ReverseProxy sends.
//
// # No mux
//
// Go's http.ServeMux redirects paths containing "//" or "..", which are valid S3 keys, so
// the Handler takes every path itself.
package proxy
