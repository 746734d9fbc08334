package backend

import (
	"bytes"
	"errors"
	"log/slog"
	"slices"
	"testing"
)

// TestHealth: a backend that fails and answers again, each several times,
// is one Error line with the cause and one Info line, and the gauge
// follows it from up.
func TestHealth(t *testing.T) {
	var logs bytes.Buffer
	var ups []bool
	h := NewHealth(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{ReplaceAttr: dropTime})),
		func(up bool) { ups = append(ups, up) }, "store down", "store back")
	if !h.Up() {
		t.Fatal("a new backend is down")
	}
	h.Answered()
	if !h.Failed(errors.New("refused")) || h.Failed(errors.New("again")) || h.Up() {
		t.Fatalf("Failed twice: the first must take it down, the second not (up %v)", h.Up())
	}
	h.Answered()
	h.Answered()
	if !h.Up() {
		t.Fatal("down after it answered")
	}
	want := "level=ERROR msg=\"store down\" err=refused\nlevel=INFO msg=\"store back\"\n"
	if logs.String() != want {
		t.Errorf("log:\n%s\nwant:\n%s", logs.String(), want)
	}
	if !slices.Equal(ups, []bool{true, false, true}) {
		t.Errorf("gauge settings %v, want [true false true]", ups)
	}
}

func dropTime(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}
