package api

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
)

// Logging is the server's logger with a level and a format that a reload
// (SIGHUP) can change while every component keeps the *slog.Logger it was
// given. Both are atomics read on each record: no lock on the hot path.
type Logging struct {
	level  slog.LevelVar // log.level
	json   atomic.Bool   // log.format: json when true, else text
	logger *slog.Logger
}

// NewLogging returns the logger log.format and log.level ask for, writing
// to w. Values Validate would refuse fall back to text and info.
func NewLogging(w io.Writer, format, level string) *Logging {
	l := &Logging{}
	opts := &slog.HandlerOptions{Level: &l.level}
	l.logger = slog.New(&switchHandler{
		json: &l.json,
		text: slog.NewTextHandler(w, opts),
		js:   slog.NewJSONHandler(w, opts),
	})
	l.Set(format, level)
	return l
}

// Logger returns the logger. Its level and format follow Set.
func (l *Logging) Logger() *slog.Logger { return l.logger }

// Set switches the format (text or json) and the level (debug, info,
// warn, error) of every logger derived from Logger.
func (l *Logging) Set(format, level string) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		lv = slog.LevelInfo
	}
	l.level.Set(lv)
	l.json.Store(format == "json")
}

// switchHandler sends each record to the text or the JSON handler, as the
// shared flag says at that moment. Derived handlers (With, WithGroup) keep
// both branches, so a logger made before a format change follows it.
type switchHandler struct {
	json     *atomic.Bool
	text, js slog.Handler
}

func (h *switchHandler) pick() slog.Handler {
	if h.json.Load() {
		return h.js
	}
	return h.text
}

func (h *switchHandler) Enabled(ctx context.Context, lv slog.Level) bool {
	return h.pick().Enabled(ctx, lv)
}

func (h *switchHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.pick().Handle(ctx, r)
}

func (h *switchHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &switchHandler{json: h.json, text: h.text.WithAttrs(attrs), js: h.js.WithAttrs(attrs)}
}

func (h *switchHandler) WithGroup(name string) slog.Handler {
	return &switchHandler{json: h.json, text: h.text.WithGroup(name), js: h.js.WithGroup(name)}
}
