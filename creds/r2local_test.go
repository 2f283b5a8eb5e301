package creds

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/signet-proxy/signet/config"
	"github.com/signet-proxy/signet/internal/testenv"
)

const (
	testAccount      = "0123456789abcdef0123456789abcdef"
	testParentKeyID  = "parentkeyid0000000000000000000000"
	testParentSecret = "parent-secret-0123456789abcdef0123456789abcdef0123456789abcdef01"
)

// testNow is the fixed clock of the local-minting tests.
func testNow() time.Time { return time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC) }

// r2LocalCase is one Key to mint and the claims it must produce besides the fixed ones.
type r2LocalCase struct {
	name  string
	key   Key
	extra map[string]any // actions and paths, as decoded from JSON
}

func r2LocalCases() []r2LocalCase {
	return []r2LocalCase{
		{
			name: "default jurisdiction, bucket-wide read",
			key:  Key{Bucket: "photos", Host: testAccount + ".r2.cloudflarestorage.com", Permission: PermObjectReadOnly},
		},
		{
			name: "eu, actions and prefixes",
			key: Key{Bucket: "eu-logs", Jurisdiction: "eu", Host: testAccount + ".eu.r2.cloudflarestorage.com",
				Permission: PermObjectReadWrite, Actions: "GetObject\nHeadObject\nPutObject", Prefixes: "logs/\nuploads/"},
			extra: map[string]any{
				"actions": []any{"GetObject", "HeadObject", "PutObject"},
				"paths":   map[string]any{"prefixPaths": []any{"logs/", "uploads/"}},
			},
		},
		{
			name: "fedramp, objects only",
			key: Key{Bucket: "gov", Jurisdiction: "fedramp", Host: testAccount + ".fedramp.r2.cloudflarestorage.com",
				Permission: PermObjectReadOnly, Objects: "reports/2026-q1.pdf\nshared/manifest.json"},
			extra: map[string]any{
				"paths": map[string]any{"objectPaths": []any{"reports/2026-q1.pdf", "shared/manifest.json"}},
			},
		},
		{
			name: "us, admin with prefixes and objects",
			key: Key{Bucket: "us-data", Jurisdiction: "us", Host: testAccount + ".us.r2.cloudflarestorage.com",
				Permission: PermAdminReadWrite, Prefixes: "a/", Objects: "b/c.txt"},
			extra: map[string]any{
				"paths": map[string]any{"prefixPaths": []any{"a/"}, "objectPaths": []any{"b/c.txt"}},
			},
		},
		{
			name: "every documented action",
			key: Key{Bucket: "all", Host: testAccount + ".r2.cloudflarestorage.com",
				Permission: PermAdminReadOnly, Actions: strings.Join(config.R2Actions(), "\n")},
			extra: map[string]any{"actions": toAny(config.R2Actions())},
		},
	}
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func newTestR2Local(t *testing.T, optFns ...func(*R2LocalOptions)) *R2Local {
	t.Helper()
	fns := append([]func(*R2LocalOptions){func(o *R2LocalOptions) { o.Now = testNow }}, optFns...)
	m, err := NewR2Local(testAccount, testParentKeyID, testParentSecret, fns...)
	if err != nil {
		t.Fatalf("NewR2Local: %v", err)
	}
	return m
}

// wantClaims is the whole claim set a case must produce with a TTL of ttl.
func (tc r2LocalCase) wantClaims(ttl time.Duration) map[string]any {
	want := map[string]any{
		"bucket": tc.key.Bucket,
		"scope":  tc.key.Permission,
		"sub":    testAccount,
		"iss":    testParentKeyID,
		"aud":    tc.key.Host,
		"iat":    float64(testNow().Unix()),
		"exp":    float64(testNow().Add(ttl).Unix()),
	}
	for k, v := range tc.extra {
		want[k] = v
	}
	return want
}

// jwtFromToken undoes Session Token = base64("jwt/" + JWT).
func jwtFromToken(t *testing.T, token string) string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(token)
	if err != nil {
		t.Fatalf("session token is not standard base64: %v", err)
	}
	s, ok := strings.CutPrefix(string(raw), "jwt/")
	if !ok {
		t.Fatalf("session token does not start with jwt/: %.10q", raw)
	}
	return s
}

func TestR2LocalMint(t *testing.T) {
	const ttl = 15 * time.Minute // the default
	m := newTestR2Local(t)
	for _, tc := range r2LocalCases() {
		t.Run(tc.name, func(t *testing.T) {
			cr, err := m.Mint(t.Context(), tc.key)
			if err != nil {
				t.Fatalf("Mint: %v", err)
			}
			signed := jwtFromToken(t, cr.SessionToken)

			// The documented derivation.
			if cr.AccessKeyID != testParentKeyID {
				t.Errorf("AccessKeyID = %q, want the parent's", cr.AccessKeyID)
			}
			sum := sha256.Sum256([]byte(signed))
			if cr.SecretAccessKey != hex.EncodeToString(sum[:]) {
				t.Errorf("SecretAccessKey is not hex(sha256(jwt))")
			}
			if want := base64.StdEncoding.EncodeToString([]byte("jwt/" + signed)); cr.SessionToken != want {
				t.Errorf("SessionToken is not base64(\"jwt/\"+jwt)")
			}
			if !cr.CanExpire || !cr.Expires.Equal(testNow().Add(ttl)) {
				t.Errorf("Expires = %v (CanExpire %v), want %v", cr.Expires, cr.CanExpire, testNow().Add(ttl))
			}

			// The header, byte for byte as documented.
			header, err := base64.RawURLEncoding.DecodeString(strings.Split(signed, ".")[0])
			if err != nil {
				t.Fatalf("header: %v", err)
			}
			if string(header) != `{"alg":"HS256","typ":"JWT"}` {
				t.Errorf("header = %s", header)
			}

			// The signature with the parent secret, and every claim.
			claims := jwt.MapClaims{}
			_, err = jwt.ParseWithClaims(signed, claims, func(*jwt.Token) (any, error) { return []byte(testParentSecret), nil },
				jwt.WithValidMethods([]string{"HS256"}),
				jwt.WithTimeFunc(func() time.Time { return testNow().Add(time.Minute) }),
				jwt.WithAudience(tc.key.Host), jwt.WithIssuer(testParentKeyID), jwt.WithSubject(testAccount),
				jwt.WithIssuedAt(), jwt.WithExpirationRequired())
			if err != nil {
				t.Fatalf("parse with the parent secret: %v", err)
			}
			if got, want := map[string]any(claims), tc.wantClaims(ttl); !reflect.DeepEqual(got, want) {
				t.Errorf("claims\n got %v\nwant %v", got, want)
			}
			// aud is a string, as jose's setAudience(host) writes it, not a one-element array.
			if _, ok := claims["aud"].(string); !ok {
				t.Errorf("aud = %#v, want a string", claims["aud"])
			}

			_, err = jwt.Parse(signed, func(*jwt.Token) (any, error) { return []byte("another secret"), nil },
				jwt.WithTimeFunc(testNow))
			if !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
				t.Errorf("parse with another secret: err = %v, want ErrTokenSignatureInvalid", err)
			}
		})
	}
}

func TestR2LocalTTL(t *testing.T) {
	tests := []struct {
		name    string
		ttl     time.Duration
		want    time.Duration
		wantErr string
	}{
		{name: "default", want: 15 * time.Minute},
		{name: "one hour", ttl: time.Hour, want: time.Hour},
		{name: "seven days", ttl: MaxR2TTL, want: MaxR2TTL},
		{name: "sub-second part dropped", ttl: 90*time.Second + 500*time.Millisecond, want: 90 * time.Second},
		{name: "over seven days", ttl: MaxR2TTL + time.Second, wantErr: "ttl"},
		{name: "under a second", ttl: time.Millisecond, wantErr: "ttl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewR2Local(testAccount, testParentKeyID, testParentSecret, func(o *R2LocalOptions) {
				o.TTL = tt.ttl
				o.Now = func() time.Time { return testNow().Add(300 * time.Millisecond) }
			})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("NewR2Local: err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			cr, err := m.Mint(t.Context(), r2LocalCases()[0].key)
			if err != nil {
				t.Fatal(err)
			}
			if got := cr.Expires.Sub(testNow()); got != tt.want {
				t.Errorf("lifetime = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestR2LocalRejects(t *testing.T) {
	good := Key{Bucket: "b", Host: "acct.r2.cloudflarestorage.com", Permission: PermObjectReadOnly}
	tests := []struct {
		name    string
		key     func(Key) Key
		wantErr string
	}{
		{name: "unknown action", key: func(k Key) Key { k.Actions = "GetObject\nListBuckets"; return k }, wantErr: `action "ListBuckets"`},
		{name: "lowercase action", key: func(k Key) Key { k.Actions = "getobject"; return k }, wantErr: `action "getobject"`},
		{name: "no host", key: func(k Key) Key { k.Host = ""; return k }, wantErr: "host"},
		{name: "no bucket", key: func(k Key) Key { k.Bucket = ""; return k }, wantErr: "bucket is empty"},
		{name: "bad permission", key: func(k Key) Key { k.Permission = "read"; return k }, wantErr: `permission "read"`},
	}
	m := newTestR2Local(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := m.Mint(t.Context(), tt.key(good))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Mint: err = %v, want one containing %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), testParentSecret) {
				t.Errorf("error holds the parent secret: %v", err)
			}
		})
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := m.Mint(ctx, good); !errors.Is(err, context.Canceled) {
		t.Errorf("Mint with a done ctx: err = %v", err)
	}
}

func TestR2LocalRedacts(t *testing.T) {
	m := newTestR2Local(t)
	for _, s := range []string{m.String(), m.GoString(), m.LogValue().String()} {
		if strings.Contains(s, testParentSecret) {
			t.Errorf("%q holds the parent secret", s)
		}
	}
	if _, err := NewR2Local("", "", ""); err == nil || !strings.Contains(err.Error(), "account id is empty") {
		t.Errorf("NewR2Local with nothing: err = %v", err)
	}
}

func TestValidAction(t *testing.T) {
	for _, a := range config.R2Actions() {
		if !ValidAction(a) {
			t.Errorf("ValidAction(%q) = false", a)
		}
	}
	for _, a := range []string{"", "ListBuckets", "CreateBucket", "getObject", "GetObject "} {
		if ValidAction(a) {
			t.Errorf("ValidAction(%q) = true", a)
		}
	}
	if n := len(config.R2Actions()); n != 16 {
		t.Errorf("R2Actions has %d actions, want the 16 documented", n)
	}
	a := config.R2Actions()
	a[0] = "changed"
	if config.R2Actions()[0] != "HeadObject" {
		t.Error("R2Actions shares its slice")
	}
}

// joseScript verifies each minted credential as Cloudflare's own example would produce and
// check it, with the jose package: HS256 signature with the parent secret, iss, aud, sub,
// exp; and re-derives the secret and session token with node's crypto.
const joseScript = `
import { jwtVerify } from 'jose';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

const cases = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const out = [];
for (const c of cases) {
  const decoded = Buffer.from(c.sessionToken, 'base64').toString('utf8');
  if (!decoded.startsWith('jwt/')) throw new Error(c.name + ': session token lacks the jwt/ prefix');
  const jwt = decoded.slice(4);
  const opts = { algorithms: ['HS256'], issuer: c.parentKeyId, audience: c.host,
                 subject: c.accountId, currentDate: new Date(c.nowUnix * 1000) };
  const r = { name: c.name };
  try {
    const { payload, protectedHeader } = await jwtVerify(jwt, new TextEncoder().encode(c.secret), opts);
    r.header = protectedHeader;
    r.payload = payload;
  } catch (e) {
    r.error = e.code || String(e);
  }
  r.secretMatches = createHash('sha256').update(jwt).digest('hex') === c.secretAccessKey;
  r.tokenMatches = Buffer.from('jwt/' + jwt).toString('base64') === c.sessionToken;
  out.push(r);
}
console.log(JSON.stringify(out));
`

// joseModules returns a node_modules directory holding jose: $SIGNET_NODE_MODULES, else
// testenv.ToolsDir()/node/node_modules ($SIGNET_TOOLS, else os.UserCacheDir()/signet-tools),
// installed there with npm on first use.
func joseModules(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("SIGNET_NODE_MODULES"); dir != "" {
		if _, err := os.Stat(filepath.Join(dir, "jose", "package.json")); err != nil {
			t.Fatalf("SIGNET_NODE_MODULES=%s has no jose: %v (npm install --prefix <dir> jose@6, then point it at <dir>/node_modules)", dir, err)
		}
		return dir
	}
	tools, err := testenv.ToolsDir()
	if err != nil {
		t.Fatalf("no SIGNET_NODE_MODULES and no tools dir: %v", err)
	}
	prefix := filepath.Join(tools, "node")
	modules := filepath.Join(prefix, "node_modules")
	if _, err := os.Stat(filepath.Join(modules, "jose", "package.json")); err == nil {
		return modules
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatalf("jose is not installed in %s and npm is missing: %v (apt-get install -y nodejs npm)", modules, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "install", "--prefix", prefix, "--no-audit", "--no-fund", "jose@6")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm install --prefix %s jose@6: %v\n%s", prefix, err, out)
	}
	return modules
}

// TestR2LocalVerifiedByJose checks the minted credentials with an implementation other than
// the one that made them: Node's jose, which Cloudflare's example uses.
func TestR2LocalVerifiedByJose(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is needed to verify R2 JWTs with jose: %v (apt-get install -y nodejs npm)", err)
	}
	modules := joseModules(t)

	type jsCase struct {
		Name            string `json:"name"`
		SessionToken    string `json:"sessionToken"`
		SecretAccessKey string `json:"secretAccessKey"`
		Secret          string `json:"secret"`
		ParentKeyID     string `json:"parentKeyId"`
		AccountID       string `json:"accountId"`
		Host            string `json:"host"`
		NowUnix         int64  `json:"nowUnix"`
	}
	m := newTestR2Local(t)
	cases := r2LocalCases()
	var in []jsCase
	for _, tc := range cases {
		cr, err := m.Mint(t.Context(), tc.key)
		if err != nil {
			t.Fatalf("%s: Mint: %v", tc.name, err)
		}
		in = append(in, jsCase{Name: tc.name, SessionToken: cr.SessionToken, SecretAccessKey: cr.SecretAccessKey,
			Secret: testParentSecret, ParentKeyID: testParentKeyID, AccountID: testAccount, Host: tc.key.Host,
			NowUnix: testNow().Add(time.Minute).Unix()})
	}
	// Negative controls: jose must refuse a wrong secret, a wrong audience, and an expired token.
	bad := in[0]
	bad.Name, bad.Secret = "wrong secret", "not the parent secret"
	in = append(in, bad)
	bad = in[0]
	bad.Name, bad.Host = "wrong audience", testAccount+".eu.r2.cloudflarestorage.com"
	in = append(in, bad)
	bad = in[0]
	bad.Name, bad.NowUnix = "expired", testNow().Add(16*time.Minute).Unix()
	in = append(in, bad)

	dir := t.TempDir()
	script := filepath.Join(dir, "verify.mjs")
	if err := os.WriteFile(script, []byte(joseScript), 0o600); err != nil {
		t.Fatal(err)
	}
	// ES module imports ignore NODE_PATH: resolve 'jose' through a node_modules beside the script.
	if err := os.Symlink(modules, filepath.Join(dir, "node_modules")); err != nil {
		t.Fatal(err)
	}
	input, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	inputPath := filepath.Join(dir, "cases.json")
	if err := os.WriteFile(inputPath, input, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), node, script, inputPath)
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node %s: %v\n%s", script, err, stderr.String())
	}
	var results []struct {
		Name          string         `json:"name"`
		Header        map[string]any `json:"header"`
		Payload       map[string]any `json:"payload"`
		Error         string         `json:"error"`
		SecretMatches bool           `json:"secretMatches"`
		TokenMatches  bool           `json:"tokenMatches"`
	}
	if err := json.Unmarshal(out, &results); err != nil {
		t.Fatalf("node output %q: %v", out, err)
	}
	if len(results) != len(in) {
		t.Fatalf("node verified %d cases, want %d", len(results), len(in))
	}
	wantErr := map[string]string{
		"wrong secret":   "ERR_JWS_SIGNATURE_VERIFICATION_FAILED",
		"wrong audience": "ERR_JWT_CLAIM_VALIDATION_FAILED",
		"expired":        "ERR_JWT_EXPIRED",
	}
	for i, r := range results {
		t.Run(r.Name, func(t *testing.T) {
			if !r.SecretMatches || !r.TokenMatches {
				t.Errorf("node re-derived secret matches: %v, session token matches: %v", r.SecretMatches, r.TokenMatches)
			}
			if want, ok := wantErr[r.Name]; ok {
				if r.Error != want {
					t.Errorf("jose error = %q, want %q", r.Error, want)
				}
				return
			}
			if r.Error != "" {
				t.Fatalf("jose rejected the JWT: %s", r.Error)
			}
			if want := map[string]any{"alg": "HS256", "typ": "JWT"}; !reflect.DeepEqual(r.Header, want) {
				t.Errorf("header = %v, want %v", r.Header, want)
			}
			if want := cases[i].wantClaims(15 * time.Minute); !reflect.DeepEqual(r.Payload, want) {
				t.Errorf("claims seen by jose\n got %v\nwant %v", r.Payload, want)
			}
		})
	}
}
