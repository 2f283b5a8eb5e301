package testenv

import (
	"encoding/pem"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
)

// Pebble is an ACME CA (letsencrypt/pebble) running in the test process.
type Pebble struct {
	Directory string // ACME directory URL
	CARoot    string // file with the PEM certificate of the directory's HTTPS server
	RootPEM   []byte // the root that Pebble's certificates chain to
}

// StartPebble runs Pebble until the test ends. Its validation authority connects to
// httpPort for HTTP-01 and tlsPort for TLS-ALPN-01, on the address "localhost" resolves
// to first; it really validates (PEBBLE_VA_ALWAYS_VALID is not set).
func StartPebble(t *testing.T, httpPort, tlsPort int) *Pebble {
	t.Helper()
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0") // else 5% of good nonces are rejected
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")      // else up to 5 s before each validation
	t.Setenv("PEBBLE_AUTHZREUSE", "0")      // every order is validated afresh
	logger := log.New(testWriter(t), "pebble ", log.Lmicroseconds)
	store := db.NewMemoryStore()
	authority := ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {Description: "default"}})
	w := wfe.New(logger, store, va.New(logger, httpPort, tlsPort, false, "", store), authority,
		[]string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	srv := httptest.NewTLSServer(w.Handler())
	t.Cleanup(srv.Close)

	caRoot := filepath.Join(t.TempDir(), "pebble-wfe.pem")
	wfePEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caRoot, wfePEM, 0o600); err != nil {
		t.Fatal(err)
	}
	root := authority.GetRootCert(0)
	return &Pebble{
		Directory: srv.URL + "/dir",
		CARoot:    caRoot,
		RootPEM:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.DER}),
	}
}

// testWriter writes to t.Output() until the test ends, then discards: Pebble's
// goroutines outlive the test and may still log.
func testWriter(t *testing.T) io.Writer {
	w := &stoppableWriter{w: t.Output()}
	t.Cleanup(func() {
		w.mu.Lock()
		w.w = io.Discard
		w.mu.Unlock()
	})
	return w
}

type stoppableWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *stoppableWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
