package testnet_test

import (
	"bytes"
	"image/color"
	"image/png"
	"testing"

	"github.com/vigilnet/vigil/testnet"
)

func TestPlotPNG(t *testing.T) {
	p := testnet.Plot{
		Title: "detection latency", XLabel: "nodes", YLabel: "ms",
		HLine: 500, HLineLabel: "target",
		Series: []testnet.Series{
			{Name: "p50", X: []float64{10, 25, 50}, Y: []float64{40, 60, 90}, Colour: color.RGBA{0, 90, 200, 255}},
			{Name: "p99", X: []float64{10, 25, 50}, Y: []float64{120, 180, 260}, Colour: color.RGBA{220, 120, 0, 255}},
		},
	}
	var buf bytes.Buffer
	if err := p.WritePNG(&buf); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 720 || b.Dy() != 420 {
		t.Fatalf("size %v", b)
	}
	// The p50 series' colour must appear: the data was drawn.
	found := false
	for y := 0; y < 420 && !found; y++ {
		for x := 0; x < 720; x++ {
			if r, g, b, _ := img.At(x, y).RGBA(); r>>8 == 0 && g>>8 == 90 && b>>8 == 200 {
				found = true
				break
			}
		}
	}
	if !found {
		t.Fatal("series not drawn")
	}
	bad := testnet.Plot{Series: []testnet.Series{{X: []float64{1}, Y: nil}}}
	if err := bad.WritePNG(&buf); err == nil {
		t.Fatal("mismatched series accepted")
	}
}
