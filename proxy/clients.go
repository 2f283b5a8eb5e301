package proxy

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/signet-proxy/signet/config"
	"github.com/signet-proxy/signet/creds"
	"github.com/signet-proxy/signet/signer"
)

// clients are the app identities of a table: signet-only keys whose SigV4 signatures are
// verified before anything is forwarded, and what each may reach.
type clients struct {
	verifier *signer.Verifier
	byKey    map[string]*client
}

// client is one identity's reach.
type client struct {
	name     string
	buckets  []string // local names or globs
	readOnly bool
	scope    scope
}

func newClients(list []*config.Client) (*clients, error) {
	if len(list) == 0 {
		return nil, nil
	}
	secrets := make(map[string]string, len(list))
	cs := &clients{byKey: make(map[string]*client, len(list))}
	for _, c := range list {
		secret, err := creds.ValueOrFile(c.SecretAccessKey.Value(), c.SecretAccessKeyFile)
		if err != nil {
			return nil, fmt.Errorf("client %s: secret access key: %w", c.Name, err)
		}
		secrets[c.AccessKeyID] = secret
		cs.byKey[c.AccessKeyID] = &client{
			name:     c.Name,
			buckets:  c.Buckets,
			readOnly: c.Access == config.AccessReadOnly,
			scope:    scope{prefixes: c.Prefixes},
		}
	}
	cs.verifier = signer.NewVerifier(func(id string) (string, bool) {
		s, ok := secrets[id]
		return s, ok
	})
	return cs, nil
}

// authenticate verifies r's signature and returns the client that made it.
func (cs *clients) authenticate(r *http.Request) (*client, *signer.Verified, *s3Error) {
	v, err := cs.verifier.Verify(r)
	if err != nil {
		if e, ok := errors.AsType[*s3Error](err); ok {
			return nil, nil, e
		}
		return nil, nil, &s3Error{Status: http.StatusForbidden, Code: "AccessDenied", Message: err.Error()}
	}
	c := cs.byKey[v.AccessKeyID]
	if c == nil { // the verifier only knows these keys
		return nil, nil, &s3Error{Status: http.StatusForbidden, Code: "InvalidAccessKeyId", Message: "the access key id is not a client of signet"}
	}
	return c, v, nil
}
