// Package creds supplies the credentials signet signs upstream requests with.
//
// Every source sits behind one small interface, [Provider], modelled on the SDK's
// aws.CredentialsProvider: Retrieve(ctx, key) returns the credentials to sign a request for
// the route described by key. Sources that know nothing about routes (static keys, a
// credentials file) ignore the key; sources that mint per-bucket credentials (R2 temporary
// credentials) use it to decide what to mint.
//
// # Secrets
//
// Credentials are values; they are never logged. Errors returned by providers name the
// account, bucket and source that failed, never a secret or session token.
package creds
