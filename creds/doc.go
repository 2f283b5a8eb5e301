// Package creds supplies the credentials signet signs upstream requests with.
//
// Every source sits behind one small interface, [Provider], modelled on the SDK's
// aws.CredentialsProvider: Retrieve(ctx, key) returns the credentials to sign a request for
// the route described by key. Sources that know nothing about routes (static keys, a
// credentials file) ignore the key; sources that mint per-bucket credentials (R2 temporary
// credentials) use it to decide what to mint.
//
// # Sources
//
// [Static] holds fixed keys; [File] reads a credentials file and follows its rotation. R2
// temporary credentials come from a [Minter], [R2API] (Cloudflare's temp-access-credentials
// call) or [R2Local] (a JWT signed locally with the parent secret), behind a [Cache], which
// holds one credential per [Key] and refreshes it in the background. [AWS] fetches through
// the AWS SDK for Go's providers (its default chain, a profile, an assumed role) behind an
// [AccountCache]: the same refreshing cache, holding one credential for the whole account.
//
// # Expiry is computed, not returned
//
// The temp-access-credentials response carries no expiry. [R2API] sets Expires to the time
// taken before the request plus the ttlSeconds it asked for, so the credential is never
// believed to outlive what was granted. [R2Local] sets Expires to the JWT's exp claim.
//
// # Refresh at two thirds
//
// A credential is re-minted in the background at RefreshRatio (2/3) of its usable lifetime,
// the time from mint until SafetyMargin before expiry, with a little jitter so keys minted
// together do not refresh together. The remaining third is for retries (exponential
// backoff, honouring Retry-After: the Cloudflare API blocks a token for five minutes once it
// exceeds 1200 calls in five minutes), while the old credential keeps serving. A credential
// that expires within SafetyMargin is never returned: it must outlast the longest request
// signed with it. Requests therefore wait for a mint only when a key is first used, after
// [Cache.Invalidate], or after a key went idle.
//
// # Requests do not wait for the background backoff
//
// While a key has no valid credential, the requests that want it mint again promptly
// (from MinBackoff doubling to PromptMaxBackoff, jittered, one mint shared by all of them),
// so signet recovers as soon as the API does. A key whose mints fail has no background
// loop at all: a bucket name a client made up on a glob route must not become a mint loop.
// MaxKeys bounds the keys held; the least recently used goes first.
//
// # A budget of API calls
//
// Cloudflare allows 1200 API calls in 5 minutes per user and blocks every call for 5
// minutes beyond that. A [Budget], one per API token ([Budgets]), counts the calls of
// every Cache minting with the token; refreshes of credentials in use may spend all of it,
// everything else (first mints, retries, presigned URLs) only what its reserve leaves.
// Beyond that a mint fails with a [*BudgetError] ([ErrBudget]) carrying RetryAfter. A 429
// blocks the budget until its Retry-After. Presign credentials ([Cache.MintTTL]) are
// reused while their remaining lifetime covers the URL's.
//
// # One v4 signer per credential set
//
// The SDK's v4 signer caches the derived signing key by access key ID and day, never by
// secret. Locally minted R2 credentials keep the parent's access key ID and change only the
// secret, so a signer shared across refreshes would go on signing with the old secret's key
// and every request after a refresh would fail with SignatureDoesNotMatch. Create a signer
// with each credential set (a new Retrieve result whose SecretAccessKey differs) and keep it
// with that set.
//
// # Secrets
//
// Credentials are values; they are never logged. Errors returned by providers name the
// account, bucket and source that failed, never a secret or session token.
package creds
