package listen

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"syscall"
)

// unixScheme prefixes a Unix socket path in a listen address.
const unixScheme = "unix://"

// socketMode lets the owner and the group connect (connecting needs write permission).
const socketMode = 0o660

// Listen opens addr, a TCP "host:port" or a Unix socket "unix:///path/to.sock", wrapped
// in TLS when tlsConfig is non-nil. A Unix socket is made mode 0660; a socket file left
// by a process that is gone is removed first, while a live socket or a path that is not
// a socket is an error. Closing the listener removes the socket file.
func Listen(ctx context.Context, addr string, tlsConfig *tls.Config) (net.Listener, error) {
	var (
		ln  net.Listener
		err error
	)
	if path, ok := strings.CutPrefix(addr, unixScheme); ok {
		ln, err = listenUnix(ctx, path)
	} else {
		var lc net.ListenConfig
		ln, err = lc.Listen(ctx, "tcp", addr)
		if err != nil {
			err = fmt.Errorf("listen on %s: %w", addr, err)
		}
	}
	if err != nil {
		return nil, err
	}
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
	}
	return ln, nil
}

// listenUnix binds a Unix socket at path, replacing a stale one, and makes it 0660.
func listenUnix(ctx context.Context, path string) (net.Listener, error) {
	if path == "" {
		return nil, fmt.Errorf("listen on %s: no socket path", unixScheme)
	}
	if err := removeStaleSocket(ctx, path); err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on unix socket %s: %w", path, err)
	}
	// Bind creates the socket with the umask's mode; there is no way to pass one without
	// changing the process-wide umask, so set it at once.
	if err := os.Chmod(path, socketMode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("set mode of unix socket %s: %w", path, err)
	}
	return ln, nil
}

// removeStaleSocket removes path if it is a socket nobody listens on.
func removeStaleSocket(ctx context.Context, path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("unix socket %s: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("unix socket %s: the path exists and is not a socket (%s)", path, fi.Mode().Type())
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err == nil {
		conn.Close()
		return fmt.Errorf("unix socket %s: another process is listening on it", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("unix socket %s: check whether it is in use: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale unix socket %s: %w", path, err)
	}
	return nil
}
