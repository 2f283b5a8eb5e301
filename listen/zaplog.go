package listen

import (
	"context"
	"log/slog"
	"maps"
	"slices"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// newZapLogger returns a *zap.Logger, which certmagic requires, that writes to logger:
// certmagic's messages then go where signet's go, in its format, instead of to stderr
// through certmagic's default logger.
func newZapLogger(logger *slog.Logger) *zap.Logger {
	return zap.New(slogCore{h: logger.Handler()})
}

// slogCore is a zapcore.Core that hands each entry to a slog.Handler.
type slogCore struct {
	h slog.Handler
}

var _ zapcore.Core = slogCore{}

// Enabled reports whether the handler takes records at zap level l.
func (c slogCore) Enabled(l zapcore.Level) bool {
	return c.h.Enabled(context.Background(), slogLevel(l))
}

// With returns a core whose records carry fields.
func (c slogCore) With(fields []zapcore.Field) zapcore.Core {
	return slogCore{h: c.h.WithAttrs(attrs(fields))}
}

// Check adds c to ce when the entry's level is enabled.
func (c slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

// Write hands the entry to the handler, with the zap logger's name as "logger".
func (c slogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	r := slog.NewRecord(e.Time, slogLevel(e.Level), e.Message, 0)
	if e.LoggerName != "" {
		r.AddAttrs(slog.String("logger", e.LoggerName))
	}
	r.AddAttrs(attrs(fields)...)
	return c.h.Handle(context.Background(), r)
}

// Sync does nothing: slog handlers do not buffer.
func (slogCore) Sync() error { return nil }

// slogLevel maps zap's levels onto slog's; DPanic, Panic and Fatal become Error.
func slogLevel(l zapcore.Level) slog.Level {
	switch {
	case l <= zapcore.DebugLevel:
		return slog.LevelDebug
	case l == zapcore.InfoLevel:
		return slog.LevelInfo
	case l == zapcore.WarnLevel:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

// attrs encodes zap fields as slog attributes, in key order. zap's own encoder does the
// conversion (an error becomes its message, a namespace a nested map).
func attrs(fields []zapcore.Field) []slog.Attr {
	if len(fields) == 0 {
		return nil
	}
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fields {
		f.AddTo(enc)
	}
	out := make([]slog.Attr, 0, len(enc.Fields))
	for _, k := range slices.Sorted(maps.Keys(enc.Fields)) {
		out = append(out, slog.Any(k, enc.Fields[k]))
	}
	return out
}
