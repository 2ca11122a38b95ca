package chart

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestSaveWritesAPNG(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.png")
	c := Chart{
		Title: "t", XLabel: "x", YLabel: "y", LogX: true, Diagonal: true,
		Series: []Series{
			{Name: "a", X: []float64{1, 10, 100}, Y: []float64{1, 9, 50}},
			{Name: "b", X: []float64{0, 10, 100}, Y: []float64{1, 10, 100}},
		},
	}
	if err := c.Save(path, 400, 300); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("%s is not a PNG (starts %q)", path, b[:min(8, len(b))])
	}
}

func TestSaveRefusesAnEmptyChart(t *testing.T) {
	c := Chart{Title: "t", LogY: true, Series: []Series{{Name: "a", X: []float64{1}, Y: []float64{0}}}}
	if err := c.Save(filepath.Join(t.TempDir(), "c.png"), 400, 300); err == nil {
		t.Error("chart with nothing drawable saved without error")
	}
}
