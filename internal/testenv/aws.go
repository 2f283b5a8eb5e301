package testenv

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/golang-jwt/jwt/v5"
)

// OIDCIssuer is an OpenID Connect provider for MinIO's AssumeRoleWithWebIdentity: it
// serves discovery (/.well-known/openid-configuration) and the JWKS of one RSA key, and
// signs RS256 ID tokens with it, as EKS's issuer does for IRSA's projected token file.
type OIDCIssuer struct {
	// URL is the issuer, the tokens' iss.
	URL string
	// ClientID is the audience MinIO is configured to accept.
	ClientID string

	key *rsa.PrivateKey
}

// oidcKeyID names the issuer's one key in its JWKS and its tokens' kid.
const oidcKeyID = "signet-test-key"

// NewOIDCIssuer starts an issuer on a loopback port and closes it in t.Cleanup.
func NewOIDCIssuer(t testing.TB) *OIDCIssuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	o := &OIDCIssuer{ClientID: "signet-test", key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{
			"issuer":                                o.URL,
			"jwks_uri":                              o.URL + "/jwks",
			"authorization_endpoint":                o.URL + "/authorize",
			"token_endpoint":                        o.URL + "/token",
			"response_types_supported":              []string{"id_token"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"claims_supported":                      []string{"sub", "aud", "exp", "iat", "iss", "policy"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		pub := key.PublicKey
		writeJSON(w, map[string]any{"keys": []map[string]string{{
			"kty": "RSA", "alg": "RS256", "use": "sig", "kid": oidcKeyID,
			"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
		}}})
	})
	// The handlers read o.URL: set it before serving.
	srv := httptest.NewUnstartedServer(mux)
	o.URL = "http://" + srv.Listener.Addr().String()
	srv.Start()
	t.Cleanup(srv.Close)
	return o
}

// MinIOEnv configures MinIO to trust the issuer, mapping the token's policy claim to a
// MinIO policy.
func (o *OIDCIssuer) MinIOEnv() []string {
	return []string{
		"MINIO_IDENTITY_OPENID_CONFIG_URL=" + o.URL + "/.well-known/openid-configuration",
		"MINIO_IDENTITY_OPENID_CLIENT_ID=" + o.ClientID,
		"MINIO_IDENTITY_OPENID_CLAIM_NAME=policy",
		"MINIO_IDENTITY_OPENID_SCOPES=openid",
	}
}

// Token signs an ID token for sub, valid for ttl, whose policy claim names a MinIO
// policy (e.g. "readwrite").
func (o *OIDCIssuer) Token(t testing.TB, sub, policy string, ttl time.Duration) string {
	t.Helper()
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": o.URL, "sub": sub, "aud": o.ClientID, "azp": o.ClientID,
		"iat": now.Unix(), "exp": now.Add(ttl).Unix(), "policy": policy,
	})
	tok.Header["kid"] = oidcKeyID
	s, err := tok.SignedString(o.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// CredentialsServer is the shared core of the container-credentials and instance-metadata
// stand-ins: it hands out credentials from Mint with an Expiration it chooses, records what
// it issued, and can be made to fail.
type CredentialsServer struct {
	// URL is the server's base URL.
	URL string

	mint     func(ctx context.Context) (aws.Credentials, error)
	lifetime time.Duration

	mu      sync.Mutex
	failing bool
	bogus   bool
	issued  []IssuedCredential
	failed  int
	onIssue chan<- IssuedCredential
}

// IssuedCredential is one answer with credentials: what was handed out and the expiry
// the stand-in declared (which may be sooner than the backing credentials' own).
type IssuedCredential struct {
	At              time.Time
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	Expires         time.Time
}

// CredentialsServerOptions configure a stand-in.
type CredentialsServerOptions struct {
	// Mint produces the credentials handed out, e.g. real MinIO STS credentials.
	Mint func(ctx context.Context) (aws.Credentials, error)
	// Lifetime, when set, is the Expiration declared: issue time + Lifetime, however long
	// the minted credentials live. Default: the minted credentials' own Expires.
	Lifetime time.Duration
	// OnIssue, when set, receives every IssuedCredential (sent without blocking: give it
	// room). Default: nil.
	OnIssue chan<- IssuedCredential
}

// SetFailing makes the stand-in answer every credentials request with a 500 and an error
// document (true) or serve again (false).
func (s *CredentialsServer) SetFailing(v bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failing = v
}

// SetBogus makes the stand-in answer 200 with an error document and no credentials, the
// shape of the failure nginx-s3-gateway #537 cached as credentials.
func (s *CredentialsServer) SetBogus(v bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bogus = v
}

// Issued returns what the stand-in handed out so far.
func (s *CredentialsServer) Issued() []IssuedCredential {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]IssuedCredential(nil), s.issued...)
}

// Failed counts the requests answered with a failure.
func (s *CredentialsServer) Failed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

// answer writes a credentials answer in the field names both AWS services use:
// AccessKeyId, SecretAccessKey, Token, Expiration (RFC 3339). extra adds fields (IMDS's
// Code, LastUpdated, Type).
func (s *CredentialsServer) answer(w http.ResponseWriter, r *http.Request, extra map[string]any) {
	s.mu.Lock()
	failing, bogus := s.failing, s.bogus
	if failing || bogus {
		s.failed++
	}
	s.mu.Unlock()
	switch {
	case failing:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_ = json.NewEncoder(w).Encode(map[string]string{"code": "ServiceUnavailable", "message": "stand-in made to fail"})
		return
	case bogus:
		writeJSON(w, map[string]string{"Code": "Failure", "Message": "stand-in answered 200 without credentials"})
		return
	}
	cr, err := s.mint(r.Context())
	if err != nil {
		http.Error(w, "mint: "+err.Error(), http.StatusBadGateway)
		return
	}
	now := time.Now().UTC()
	exp := cr.Expires
	if s.lifetime > 0 {
		exp = now.Add(s.lifetime)
	}
	ic := IssuedCredential{At: now, AccessKeyID: cr.AccessKeyID, SecretAccessKey: cr.SecretAccessKey, SessionToken: cr.SessionToken, Expires: exp}
	s.mu.Lock()
	s.issued = append(s.issued, ic)
	ch := s.onIssue
	s.mu.Unlock()
	if ch != nil {
		select {
		case ch <- ic:
		default:
		}
	}
	body := map[string]any{
		"AccessKeyId":     cr.AccessKeyID,
		"SecretAccessKey": cr.SecretAccessKey,
		"Token":           cr.SessionToken,
		"Expiration":      exp.Format(time.RFC3339Nano),
	}
	for k, v := range extra {
		body[k] = v
	}
	writeJSON(w, body)
}

// ContainerCredentials stands in for the ECS container credentials endpoint and the EKS
// Pod Identity agent: GET on its URL with the Authorization header holding the token
// (AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]) answers the JSON credentials; a wrong or
// missing token gets 401.
type ContainerCredentials struct {
	*CredentialsServer
	// TokenFile holds the authorization token, as EKS Pod Identity projects it; point
	// AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE at it.
	TokenFile string

	mu    sync.Mutex
	token string
}

// NewContainerCredentials starts the stand-in on a loopback port, writes a first token
// to TokenFile, and closes the server in t.Cleanup.
func NewContainerCredentials(t testing.TB, opts CredentialsServerOptions) *ContainerCredentials {
	t.Helper()
	c := &ContainerCredentials{
		CredentialsServer: &CredentialsServer{mint: opts.Mint, lifetime: opts.Lifetime, onIssue: opts.OnIssue},
		TokenFile:         filepath.Join(t.TempDir(), "eks-pod-identity-token"),
	}
	c.RotateToken(t, "token-1")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		want := c.token
		c.mu.Unlock()
		if r.Method != http.MethodGet {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if r.Header.Get("Authorization") != want {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(map[string]string{"code": "AccessDeniedException", "message": "bad authorization token"})
			return
		}
		c.answer(w, r, nil)
	}))
	t.Cleanup(srv.Close)
	c.URL = srv.URL + "/v1/credentials"
	return c
}

// Env is what an EKS Pod Identity container gets: the endpoint and the token file.
func (c *ContainerCredentials) Env() []string {
	return []string{"AWS_CONTAINER_CREDENTIALS_FULL_URI=" + c.URL, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=" + c.TokenFile}
}

// RotateToken makes the stand-in accept only tok, and writes it to TokenFile (by rename,
// as the kubelet swaps projected volumes).
func (c *ContainerCredentials) RotateToken(t testing.TB, tok string) {
	t.Helper()
	c.SetToken(tok)
	tmp := c.TokenFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(tok), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, c.TokenFile); err != nil {
		t.Fatal(err)
	}
}

// SetToken makes the stand-in accept only tok, leaving TokenFile as it is.
func (c *ContainerCredentials) SetToken(tok string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.token = tok
}

// IMDS stands in for EC2 instance metadata, IMDSv2 only: PUT /latest/api/token with
// X-aws-ec2-metadata-token-ttl-seconds returns a session token; GET
// /latest/meta-data/iam/security-credentials/ lists the role, and GET .../<role> answers
// the credentials (Code Success, LastUpdated, Type AWS-HMAC, AccessKeyId, SecretAccessKey,
// Token, Expiration), each only with X-aws-ec2-metadata-token (401 otherwise).
type IMDS struct {
	*CredentialsServer
	// Role is the instance profile's role name.
	Role string

	mu     sync.Mutex
	tokens map[string]bool
	gets   int // GETs that carried a valid token
}

// NewIMDS starts the stand-in on a loopback port and closes it in t.Cleanup.
func NewIMDS(t testing.TB, opts CredentialsServerOptions) *IMDS {
	t.Helper()
	m := &IMDS{
		CredentialsServer: &CredentialsServer{mint: opts.Mint, lifetime: opts.Lifetime, onIssue: opts.OnIssue},
		Role:              "signet-instance-role",
		tokens:            map[string]bool{},
	}
	credsPath := "/latest/meta-data/iam/security-credentials/"
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /latest/api/token", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") == "" {
			http.Error(w, "missing X-aws-ec2-metadata-token-ttl-seconds", http.StatusBadRequest)
			return
		}
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		tok := base64.RawURLEncoding.EncodeToString(b)
		m.mu.Lock()
		m.tokens[tok] = true
		m.mu.Unlock()
		w.Header().Set("X-aws-ec2-metadata-token-ttl-seconds", r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds"))
		_, _ = w.Write([]byte(tok))
	})
	mux.HandleFunc("GET "+credsPath+"{role...}", func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		ok := m.tokens[r.Header.Get("X-aws-ec2-metadata-token")]
		if ok {
			m.gets++
		}
		m.mu.Unlock()
		if !ok {
			http.Error(w, "", http.StatusUnauthorized) // IMDSv2 only: no token, no answer
			return
		}
		switch r.PathValue("role") {
		case "":
			_, _ = w.Write([]byte(m.Role))
		case m.Role:
			m.answer(w, r, map[string]any{"Code": "Success", "Type": "AWS-HMAC", "LastUpdated": time.Now().UTC().Format(time.RFC3339)})
		default:
			http.NotFound(w, r)
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	m.URL = srv.URL
	return m
}

// Env points the SDK's IMDS client at the stand-in.
func (m *IMDS) Env() []string {
	return []string{"AWS_EC2_METADATA_SERVICE_ENDPOINT=" + m.URL, "AWS_EC2_METADATA_DISABLED=false"}
}

// TokenGets counts credential requests that carried a valid IMDSv2 session token.
func (m *IMDS) TokenGets() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gets
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
