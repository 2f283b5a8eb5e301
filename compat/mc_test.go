package compat_test

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/signet-proxy/signet/internal/testenv"
)

// mcVersion is the MinIO client the Makefile's tools target installs. mc is AGPL: it runs
// as a separate program, never imported.
const mcVersion = "v0.0.0-20250313080218-cf909e1063a9"

const mcInstall = "run `make tools` (GOBIN=<tools>/mc-" + mcVersion + " go install github.com/minio/mc@" + mcVersion + "), or set SIGNET_MC"

// mcBinary finds mc: $SIGNET_MC, else <tools>/mc-<mcVersion>/mc.
func mcBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("SIGNET_MC"); p != "" {
		requireFile(t, p, mcInstall)
		return p
	}
	tools, err := testenv.ToolsDir()
	if err != nil {
		t.Fatalf("find the tools directory: %v: %s", err, mcInstall)
	}
	p := filepath.Join(tools, "mc-"+mcVersion, "mc")
	requireFile(t, p, mcInstall)
	return p
}

// mcOn runs mc against the listener, as alias "signet" with dummy keys (MC_HOST_signet), in
// a fresh config directory; over HTTPS it skips certificate checks (--insecure), as it has
// no way to be given the test certificate.
func mcOn(t *testing.T, e *checksumEnv, l string) *command {
	t.Helper()
	u, err := url.Parse(e.listener(l).URL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(dummyKeyID, dummySecret)
	c := newCommand(t, mcBinary(t), "MC_HOST_signet="+u.String())
	c.args = []string{"--config-dir", filepath.Join(c.dir, ".mc"), "--quiet", "--no-color"}
	if l == "https" {
		c.args = append(c.args, "--insecure")
	}
	return c
}

// mcCases are `mc cp --checksum ALG` of the small file for each algorithm (mc sends
// chunk-signed bodies with a signed trailer over HTTP, unsigned trailers over HTTPS).
func mcCases() []checksumCase {
	var cases []checksumCase
	for _, alg := range []types.ChecksumAlgorithm{
		types.ChecksumAlgorithmCrc32, types.ChecksumAlgorithmCrc32c, types.ChecksumAlgorithmCrc64nvme,
		types.ChecksumAlgorithmSha1, types.ChecksumAlgorithmSha256,
	} {
		cases = append(cases, checksumCase{"mc cp --checksum " + string(alg), small, func(t *testing.T, e *checksumEnv, l, key, file string) (upload, error) {
			_, err := mcOn(t, e, l).run(t.Context(), "cp", "--checksum", string(alg), file, fmt.Sprintf("signet/%s/%s", e.bucket, key))
			if err != nil && strings.Contains(err.Error(), "flag provided but not defined") {
				t.Fatalf("this mc has no --checksum: %v", err)
			}
			return upload{alg: alg}, err
		}})
	}
	return cases
}
