package listen

import (
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/signet-proxy/signet/config"
)

func TestNewTLSOff(t *testing.T) {
	for _, mode := range []string{config.TLSOff, ""} {
		tt, err := NewTLS(t.Context(), config.TLS{Mode: mode}, nil)
		if err != nil || tt != nil {
			t.Fatalf("mode %q: NewTLS = %v, %v; want nil, nil", mode, tt, err)
		}
		if tt.Config() != nil {
			t.Errorf("mode %q: Config() of a nil TLS is not nil", mode)
		}
		if err := tt.Close(); err != nil {
			t.Errorf("mode %q: Close of a nil TLS: %v", mode, err)
		}
	}
	if _, err := NewTLS(t.Context(), config.TLS{Mode: "acme-ish"}, nil); err == nil {
		t.Error("unknown mode: no error")
	}
}

func TestDefaultStorage(t *testing.T) {
	tests := []struct {
		name, xdg, home, want string
	}{
		{name: "XDG_DATA_HOME", xdg: "/data", home: "/home/u", want: "/data/signet"},
		{name: "relative XDG_DATA_HOME is ignored", xdg: "data", home: "/home/u", want: "/home/u/.local/share/signet"},
		{name: "no XDG_DATA_HOME", home: "/home/u", want: "/home/u/.local/share/signet"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("XDG_DATA_HOME", tc.xdg)
			t.Setenv("HOME", tc.home)
			got, err := DefaultStorage()
			if err != nil {
				t.Fatal(err)
			}
			if got != filepath.FromSlash(tc.want) {
				t.Errorf("DefaultStorage() = %q; want %q", got, tc.want)
			}
		})
	}
}

func TestZapLogger(t *testing.T) {
	var buf strings.Builder
	h := slog.NewTextHandler(&buf, &slog.HandlerOptions{
		Level: slog.LevelInfo,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})
	zl := newZapLogger(slog.New(h)).Named("obtain").With(zap.String("ca", "pebble"))
	zl.Debug("hidden")
	zl.Warn("renewing", zap.Error(errors.New("boom")), zap.Int("attempt", 2))
	zl.Error("failed")
	want := `level=WARN msg=renewing ca=pebble logger=obtain attempt=2 error=boom
level=ERROR msg=failed ca=pebble logger=obtain
`
	if got := buf.String(); got != want {
		t.Errorf("logged:\n%s\nwant:\n%s", got, want)
	}
}
