package creds

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/signet-proxy/signet/config"
	"github.com/signet-proxy/signet/internal/testenv"
)

// awsEnv gives the test an environment the SDK reads nothing else from: every AWS_*
// variable of the process unset, shared config and credentials files in a temp dir
// (absent until written), instance metadata off, and then vars. t.Setenv restores it all.
func awsEnv(t *testing.T, vars ...string) (configFile, credentialsFile string) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "AWS_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	dir := t.TempDir()
	configFile, credentialsFile = filepath.Join(dir, "config"), filepath.Join(dir, "credentials")
	t.Setenv("AWS_CONFIG_FILE", configFile)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", credentialsFile)
	// Never reach for 169.254.169.254: tests stay on loopback.
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	for _, kv := range vars {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	return configFile, credentialsFile
}

// awsAccount is an account on m with the aws source, defaulted and validated as a config
// file's would be.
func awsAccount(t *testing.T, m *testenv.MinIO, a config.AWS, tune ...func(*config.Credentials)) *config.Account {
	t.Helper()
	acct := &config.Account{Endpoint: m.Endpoint, Region: testenv.MinIORegion, Credentials: config.Credentials{AWS: &a}}
	for _, fn := range tune {
		fn(&acct.Credentials)
	}
	cfg := &config.Config{Accounts: map[string]*config.Account{"aws": acct}, Buckets: []*config.Bucket{{Name: "any", Account: "aws"}}}
	cfg.ApplyDefaults()
	if fes := cfg.Validate(); len(fes) > 0 {
		t.Fatalf("config: %v", fes)
	}
	return acct
}

// listBuckets signs a ListBuckets with cr and reports MinIO's status: MinIO checks the
// signature and the session token.
func listBuckets(t *testing.T, m *testenv.MinIO, cr aws.Credentials) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, m.Endpoint+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	const unsigned = "UNSIGNED-PAYLOAD"
	req.Header.Set("X-Amz-Content-Sha256", unsigned)
	if err := v4.NewSigner().SignHTTP(t.Context(), cr, req, unsigned, "s3", testenv.MinIORegion, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func writeFile(t *testing.T, path, body string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
}

// fastRetry makes a test's cache retry a failed fetch almost at once.
func fastRetry(o *CacheOptions) { o.MinBackoff, o.MaxBackoff = time.Millisecond, time.Millisecond }

// TestAWSSources gets credentials from each provider of the SDK's chain through the aws
// source and signet's cache, and has MinIO verify a request signed with them. MinIO's STS
// is real (AssumeRole, AssumeRoleWithWebIdentity with a test OpenID issuer); the container
// and instance-metadata endpoints are stand-ins handing out real MinIO STS credentials.
func TestAWSSources(t *testing.T) {
	issuer := testenv.NewOIDCIssuer(t)
	m := testenv.StartMinIO(t, func(o *testenv.MinIOOptions) { o.Env = issuer.MinIOEnv() })
	rootKeys := []string{"AWS_ACCESS_KEY_ID=" + m.RootUser, "AWS_SECRET_ACCESS_KEY=" + m.RootPassword}
	sts := func(ctx context.Context) (aws.Credentials, error) { return m.AssumeRole(ctx, time.Hour, "") }
	const role = "arn:aws:iam::123456789012:role/app"

	tests := []struct {
		name       string
		setup      func(t *testing.T) config.AWS
		wantSource string
		wantExpiry bool
	}{
		{
			name:       "static keys in the environment",
			setup:      func(t *testing.T) config.AWS { awsEnv(t, rootKeys...); return config.AWS{} },
			wantSource: "EnvConfigCredentials",
		},
		{
			name: "environment keys, then AssumeRole at sts_endpoint",
			setup: func(t *testing.T) config.AWS {
				awsEnv(t, rootKeys...)
				return config.AWS{RoleARN: role, ExternalID: "ext-1", STSEndpoint: m.Endpoint}
			},
			wantSource: "AssumeRoleProvider", wantExpiry: true,
		},
		{
			name: "a named profile's keys, then AssumeRole",
			setup: func(t *testing.T) config.AWS {
				_, credsFile := awsEnv(t)
				writeFile(t, credsFile, fmt.Sprintf("[prod]\naws_access_key_id = %s\naws_secret_access_key = %s\n", m.RootUser, m.RootPassword), 0o600)
				return config.AWS{Profile: "prod", RoleARN: role, STSEndpoint: m.Endpoint}
			},
			wantSource: "AssumeRoleProvider", wantExpiry: true,
		},
		{
			name: "a profile that assumes a role itself (role_arn + source_profile)",
			setup: func(t *testing.T) config.AWS {
				cfgFile, credsFile := awsEnv(t)
				writeFile(t, credsFile, fmt.Sprintf("[base]\naws_access_key_id = %s\naws_secret_access_key = %s\n", m.RootUser, m.RootPassword), 0o600)
				writeFile(t, cfgFile, "[profile app]\nrole_arn = "+role+"\nsource_profile = base\n", 0o600)
				return config.AWS{Profile: "app", STSEndpoint: m.Endpoint}
			},
			wantSource: "AssumeRoleProvider", wantExpiry: true,
		},
		{
			name: "web identity (IRSA): AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN",
			setup: func(t *testing.T) config.AWS {
				tokenFile := filepath.Join(t.TempDir(), "token")
				writeFile(t, tokenFile, issuer.Token(t, "system:serviceaccount:default:app", "readwrite", time.Hour), 0o600)
				awsEnv(t, "AWS_WEB_IDENTITY_TOKEN_FILE="+tokenFile, "AWS_ROLE_ARN="+role, "AWS_ROLE_SESSION_NAME=signet-test")
				return config.AWS{STSEndpoint: m.Endpoint}
			},
			wantSource: "WebIdentityCredentials", wantExpiry: true,
		},
		{
			name: "container credentials (ECS, EKS Pod Identity) with a token file",
			setup: func(t *testing.T) config.AWS {
				c := testenv.NewContainerCredentials(t, testenv.CredentialsServerOptions{Mint: sts})
				awsEnv(t, c.Env()...)
				return config.AWS{}
			},
			wantSource: "CredentialsEndpointProvider", wantExpiry: true,
		},
		{
			name: "instance metadata (IMDSv2)",
			setup: func(t *testing.T) config.AWS {
				md := testenv.NewIMDS(t, testenv.CredentialsServerOptions{Mint: sts})
				awsEnv(t, md.Env()...)
				return config.AWS{}
			},
			wantSource: "EC2RoleProvider", wantExpiry: true,
		},
		{
			name: "credential_process in a profile",
			setup: func(t *testing.T) config.AWS {
				cr, err := sts(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				script := filepath.Join(t.TempDir(), "creds.sh")
				writeFile(t, script, fmt.Sprintf("#!/bin/sh\nprintf '%%s' '{\"Version\": 1, \"AccessKeyId\": \"%s\", \"SecretAccessKey\": \"%s\", \"SessionToken\": \"%s\", \"Expiration\": \"%s\"}'\n",
					cr.AccessKeyID, cr.SecretAccessKey, cr.SessionToken, cr.Expires.UTC().Format(time.RFC3339)), 0o700)
				cfgFile, _ := awsEnv(t)
				writeFile(t, cfgFile, "[profile tool]\ncredential_process = "+script+"\n", 0o600)
				return config.AWS{Profile: "tool"}
			},
			wantSource: "ProcessProvider", wantExpiry: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := FromConfig("aws", awsAccount(t, m, tt.setup(t)), nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { closeProvider(p) })
			cr, err := p.Retrieve(t.Context(), Key{Bucket: "any"})
			if err != nil {
				t.Fatal(err)
			}
			if cr.Source != tt.wantSource || cr.CanExpire != tt.wantExpiry {
				t.Errorf("source %q, can expire %v; want %q, %v", cr.Source, cr.CanExpire, tt.wantSource, tt.wantExpiry)
			}
			if got := listBuckets(t, m, cr); got != http.StatusOK {
				t.Errorf("MinIO answered %d to a request signed with them", got)
			}
			// Every route of the account shares the one credential: one fetch.
			other, err := p.Retrieve(t.Context(), Key{Bucket: "other", Permission: PermObjectReadOnly})
			if err != nil || other != cr {
				t.Errorf("another key got other credentials (err %v)", err)
			}
			if st := p.(interface{ Status() []KeyStatus }).Status(); len(st) != 1 || st[0].Expires != expiresOf(cr) {
				t.Errorf("status = %+v", st)
			}
			if cr.SessionToken != "" {
				cr.SessionToken += "x"
				if got := listBuckets(t, m, cr); got != http.StatusForbidden {
					t.Errorf("MinIO answered %d to an altered session token: it is not checking", got)
				}
			}
		})
	}
}

func expiresOf(cr aws.Credentials) time.Time {
	if !cr.CanExpire {
		return time.Time{}
	}
	return cr.Expires
}

func closeProvider(p Provider) {
	if c, ok := p.(interface{ Close() error }); ok {
		c.Close()
	}
}

// TestAWSTokenFilesReread: the web identity token file and the container authorization
// token file are read on every fetch, so a rotated token is used at the next refresh
// (Envoy #41047: credentials not refreshed until a restart).
func TestAWSTokenFilesReread(t *testing.T) {
	issuer := testenv.NewOIDCIssuer(t)
	m := testenv.StartMinIO(t, func(o *testenv.MinIOOptions) { o.Env = issuer.MinIOEnv() })

	t.Run("web identity", func(t *testing.T) {
		tokenFile := filepath.Join(t.TempDir(), "token")
		writeFile(t, tokenFile, issuer.Token(t, "app", "readwrite", time.Hour), 0o600)
		awsEnv(t, "AWS_WEB_IDENTITY_TOKEN_FILE="+tokenFile, "AWS_ROLE_ARN=arn:aws:iam::123456789012:role/app")
		a, err := NewAWS(func(o *AWSOptions) { o.Region, o.STSEndpoint = testenv.MinIORegion, m.Endpoint })
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Mint(t.Context(), Key{}); err != nil {
			t.Fatal(err)
		}
		writeFile(t, tokenFile, "not-a-jwt", 0o600)
		if _, err := a.Mint(t.Context(), Key{}); err == nil {
			t.Fatal("a fetch after the token file was replaced by garbage succeeded: the file was not re-read")
		}
		writeFile(t, tokenFile, issuer.Token(t, "app", "readwrite", time.Hour), 0o600)
		cr, err := a.Mint(t.Context(), Key{})
		if err != nil {
			t.Fatal(err)
		}
		if got := listBuckets(t, m, cr); got != http.StatusOK {
			t.Errorf("MinIO answered %d", got)
		}
	})

	t.Run("container authorization token", func(t *testing.T) {
		c := testenv.NewContainerCredentials(t, testenv.CredentialsServerOptions{
			Mint: func(ctx context.Context) (aws.Credentials, error) { return m.AssumeRole(ctx, time.Hour, "") },
		})
		awsEnv(t, c.Env()...)
		a, err := NewAWS()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Mint(t.Context(), Key{}); err != nil {
			t.Fatal(err)
		}
		c.SetToken("token-2") // the agent wants a new token, the file still has the old one
		if _, err := a.Mint(t.Context(), Key{}); err == nil {
			t.Fatal("the endpoint refused the token, yet the fetch succeeded")
		}
		c.RotateToken(t, "token-2")
		if _, err := a.Mint(t.Context(), Key{}); err != nil {
			t.Fatalf("after the token file was rotated: %v", err)
		}
		if n := len(c.Issued()); n != 2 {
			t.Errorf("the endpoint issued %d credentials, want 2 (one per successful fetch)", n)
		}
	})
}

// TestAWSFailedFetchIsNotACredential: a container endpoint that fails, with a 500 or with
// a 200 that holds an error document and no keys (nginx-s3-gateway #537 cached such an
// answer as credentials), yields an error wrapping ErrNoCredentials, never credentials;
// the next fetch after the endpoint recovers succeeds.
func TestAWSFailedFetchIsNotACredential(t *testing.T) {
	m := testenv.StartMinIO(t)
	for _, mode := range []string{"500", "200 without keys"} {
		t.Run(mode, func(t *testing.T) {
			c := testenv.NewContainerCredentials(t, testenv.CredentialsServerOptions{
				Mint: func(ctx context.Context) (aws.Credentials, error) { return m.AssumeRole(ctx, time.Hour, "") },
			})
			awsEnv(t, c.Env()...)
			set := c.SetFailing
			if mode != "500" {
				set = c.SetBogus
			}
			set(true)
			// The cache's clock, moved on past the retry backoff once the endpoint recovers.
			var skew atomic.Int64
			p, err := FromConfig("aws", awsAccount(t, m, config.AWS{}), nil, fastRetry, func(o *CacheOptions) {
				o.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { closeProvider(p) })
			for range 3 {
				cr, err := p.Retrieve(t.Context(), Key{})
				if err == nil || !errors.Is(err, ErrNoCredentials) || cr.HasKeys() {
					t.Fatalf("a failing endpoint gave %+v, %v", cr.AccessKeyID, err)
				}
			}
			if c.Failed() == 0 {
				t.Fatal("the endpoint was never asked")
			}
			set(false)
			// A request after the retry backoff fetches again (a failed first fetch is
			// retried by requests, not in the background).
			skew.Store(int64(time.Minute))
			cr, err := p.Retrieve(t.Context(), Key{})
			if err != nil {
				t.Fatal(err)
			}
			if got := listBuckets(t, m, cr); got != http.StatusOK {
				t.Errorf("MinIO answered %d after recovery", got)
			}
		})
	}
}

// TestAWSProcessErrorsHideSecrets: the SDK quotes a credential_process's whole output
// when it cannot parse it; signet's error must not carry the secret that output holds.
func TestAWSProcessErrorsHideSecrets(t *testing.T) {
	const secret = "process-secret-0123456789abcdef"
	script := filepath.Join(t.TempDir(), "broken.sh")
	// A trailing comma: invalid JSON, with the keys in it.
	writeFile(t, script, "#!/bin/sh\necho '{\"Version\": 1, \"AccessKeyId\": \"AKID\", \"SecretAccessKey\": \""+secret+"\",}'\n", 0o700)
	cfgFile, _ := awsEnv(t)
	writeFile(t, cfgFile, "[profile tool]\ncredential_process = "+script+"\n", 0o600)
	a, err := NewAWS(func(o *AWSOptions) { o.Profile = "tool" })
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Mint(t.Context(), Key{})
	if err == nil {
		t.Fatal("broken output accepted")
	}
	if strings.Contains(err.Error(), secret) || strings.Contains(fmt.Sprintf("%+v %#v", err, err), secret) {
		t.Errorf("the error holds the secret: %v", err)
	}
	if !strings.Contains(err.Error(), "invalid JSON at byte") {
		t.Errorf("the error does not say what is wrong: %v", err)
	}
}

// TestAWSConcurrentFirstRequestsShareOneFetch: the first requests for every route of an
// account, arriving together, wait for one fetch and get the same credential.
func TestAWSConcurrentFirstRequestsShareOneFetch(t *testing.T) {
	m := testenv.StartMinIO(t)
	release := make(chan struct{})
	c := testenv.NewContainerCredentials(t, testenv.CredentialsServerOptions{
		Mint: func(ctx context.Context) (aws.Credentials, error) {
			<-release // hold the first fetch until every caller waits on it
			return m.AssumeRole(ctx, time.Hour, "")
		},
	})
	awsEnv(t, c.Env()...)
	p, err := FromConfig("aws", awsAccount(t, m, config.AWS{}), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeProvider(p) })
	const callers = 16
	got := make(chan aws.Credentials, callers)
	var started sync.WaitGroup
	for i := range callers {
		started.Add(1)
		go func() {
			started.Done()
			cr, err := p.Retrieve(t.Context(), Key{Bucket: fmt.Sprintf("bucket-%d", i)})
			if err != nil {
				t.Error(err)
			}
			got <- cr
		}()
	}
	started.Wait()
	close(release)
	first := <-got
	for range callers - 1 {
		if cr := <-got; cr != first {
			t.Error("callers got different credentials")
		}
	}
	if n := len(c.Issued()); n != 1 {
		t.Errorf("%d fetches for %d concurrent first requests, want 1", n, callers)
	}
}

// TestAWSIMDSOutageIsNotStretched: with IMDS down, the SDK's cache alone would hand back
// the previous instance credentials with their expiry pushed 5 to 15 minutes out (its
// "static stability"); signet's fetch must fail instead, so that its cache serves the last
// good credential only while it is really valid.
func TestAWSIMDSOutageIsNotStretched(t *testing.T) {
	m := testenv.StartMinIO(t)
	md := testenv.NewIMDS(t, testenv.CredentialsServerOptions{
		Mint:     func(ctx context.Context) (aws.Credentials, error) { return m.AssumeRole(ctx, time.Hour, "") },
		Lifetime: 2 * time.Minute, // inside the SDK's 5-minute stretching window
	})
	awsEnv(t, md.Env()...)
	a, err := NewAWS()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Mint(t.Context(), Key{}); err != nil {
		t.Fatal(err)
	}
	md.SetFailing(true)
	if cr, err := a.Mint(t.Context(), Key{}); err == nil {
		t.Fatalf("IMDS failing, yet a fetch gave credentials expiring %s", cr.Expires)
	}
	if md.TokenGets() < 2 {
		t.Error("the second fetch did not ask IMDS")
	}
}
