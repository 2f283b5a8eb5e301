// Package listen opens signet's listeners and prepares HTTPS for the S3 listener.
//
// [NewTLS] turns the config's tls section into a *tls.Config to serve with, plus a [TLS]
// value that owns the background work behind it; [Listen] opens "host:port" or
// "unix:///path" and wraps it in TLS. The call sequence for `signet serve` is
//
//	t, err := listen.NewTLS(ctx, cfg.TLS, logger) // obtains certificates; nil when mode is off
//	defer t.Close()                                // t may be nil: Close and Config accept that
//	ln, err := listen.Listen(ctx, cfg.Listen, t.Config())
//
// and `signet ca-cert` prints [CACertificatePEM].
//
// # Modes
//
//   - off: no TLS; NewTLS returns nil, nil.
//   - acme: certmagic obtains a certificate for each of Domains from the ACME CA before
//     NewTLS returns, and renews it in the background. HTTP-01 challenges are answered on
//     http_challenge_listen by a server NewTLS starts; TLS-ALPN-01 is off unless
//     [Options].TLSALPNPort is set (see below).
//   - local: signet's own certificate authority, created once in Storage, issues
//     short-lived (7 day) certificates for localhost, *.localhost, 127.0.0.1, ::1, Domains
//     and [Options].LocalNames (more with [TLS.AddNames]); certmagic caches them and
//     renews them before they expire. Clients trust the CA's certificate, printed by
//     `signet ca-cert`.
//   - files: a certificate and key on disk, re-read when either changes.
//
// # One certmagic cache per TLS, no package state
//
// certmagic's package-level Default config and cache are never used or changed: each
// [TLS] makes its own certmagic.Cache (whose GetConfigForCert returns its own config) and
// stops it in Close, so two TLS values in one process, as in tests, do not share
// certificates or renewal. certmagic itself keeps some process-wide state that cannot be
// avoided (its record of active ACME challenges, its renewal job queue): Close cancels
// renewals in progress, but a renewal job already queued may finish on certmagic's own
// goroutine shortly after Close returns.
//
// # certmagic manages names, one certificate each
//
// certmagic obtains one certificate per name and picks one by the ClientHello's SNI. An
// HTTPS client connecting to an IP address sends no SNI (RFC 6066 forbids IP literals
// there), so local mode also manages 127.0.0.1 and ::1 as names (certificates with IP
// SANs; certmagic matches a hello without SNI by the local address it arrived on) and sets
// DefaultServerName to localhost for any other address. acme mode's DefaultServerName is
// the first of Domains.
//
// # Virtual-hosted style needs a certificate per bucket host
//
// In local mode Go's TLS client accepts the *.localhost certificate for any
// bucket.localhost, but OpenSSL (curl, Python's ssl and so boto3 and the AWS CLI) refuses
// a wildcard directly under a single-label name (`openssl verify` error 62, hostname
// mismatch), and no wildcard covers a bucket name with dots. So signet serve passes the
// bucket.<suffix> host of every exactly-named route as [Options].LocalNames, each gets a
// certificate of its own (certmagic picks the exact name before a wildcard), and a reload
// adds the hosts of new routes with [TLS.AddNames]. A bucket matched only by a glob route
// has just *.localhost, which Go clients alone accept.
//
// ACME can issue wildcard certificates only through DNS-01, which signet does not do: in
// acme mode list every bucket host in Domains (photos.s3.example.com, ...) or have
// clients use path style (https://s3.example.com/photos/key).
//
// # Challenges and ports
//
// The ACME CA always connects to port 80 for HTTP-01 and port 443 for TLS-ALPN-01.
// http_challenge_listen must therefore be port 80 or be reached through a forward from
// 80. NewTLS binds it before asking for certificates and tells certmagic its host and
// port, so certmagic finds the port taken and relies on this server rather than starting
// one of its own.
//
// TLS-ALPN-01 is answered by the S3 listener itself (Config's NextProtos include
// acme-tls/1), but the first certificates are obtained inside NewTLS, before that
// listener exists; certmagic then binds the port itself for the duration of the
// challenge. Because it picks a challenge type at random, a port it cannot bind (443
// without privileges) would fail start-up half the time, so TLS-ALPN-01 is enabled only
// when [Options].TLSALPNPort names the S3 listener's port, and the CA must reach that
// port as 443.
//
// # Agreement and prompts
//
// acme mode agrees to the CA's subscriber agreement on the operator's behalf: configuring
// it is the agreement. certmagic prompts on stdin for an e-mail address when none is
// configured and it is obtaining interactively, as ManageSync does; signet is a daemon,
// so with an empty Email the ACME issuer is wrapped to never prompt (the account is then
// created without a contact). That wrapper hides the issuer's concrete type, which costs
// the ARI "replaces" hint on renewals: set Email in production.
//
// # Reloading files
//
// files mode watches the parent directories of cert_file and key_file, not the files: a
// file replaced by rename (the atomic way to write it) or a Kubernetes secret volume's
// ..data symlink swap changes what the path resolves to, which a watch on the old inode
// would miss. A certificate and key replaced one after the other are briefly a mismatched
// pair; that reload fails, the old pair keeps serving, and the next event loads the new
// pair. A pair that does not load is logged and the old one keeps serving.
//
// # Storage
//
// Storage defaults to $XDG_DATA_HOME/signet or ~/.local/share/signet ([DefaultStorage]),
// not the config directory: it holds state (keys, certificates, the ACME account), not
// configuration. Files are written 0600 in directories created 0700; certmagic's lock
// files, which exist only while an operation runs, are 0644.
//
// # Unix sockets
//
// Listen("unix:///path") removes a socket file left by a process that is gone (nothing
// answers on it) and refuses one that is alive or a path that is not a socket. The
// socket is made 0660 right after it is bound; until then it has the mode the umask
// gives (0755 with the usual 022, which lets no one else connect).
package listen
