package testnet

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Series is one line of a plot.
type Series struct {
	Name   string
	X, Y   []float64
	Colour color.RGBA
}

// Plot describes a line chart rendered to PNG by WritePNG.
type Plot struct {
	Title, XLabel, YLabel string
	Series                []Series
	// HLine, if non-zero, draws a dashed horizontal target line.
	HLine      float64
	HLineLabel string
}

const (
	plotW, plotH                    = 720, 420
	padL, padR, padT, padB          = 70, 20, 40, 50
	plotTicks                       = 5
	plotPointRadius                 = 3
	plotLegendX, plotLegendLineSpan = padL + 10, 18
)

// WritePNG renders the plot. It is deliberately simple: linear axes from 0,
// tick labels, one polyline with markers per series, a legend.
func (p Plot) WritePNG(w io.Writer) error {
	img := image.NewRGBA(image.Rect(0, 0, plotW, plotH))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	maxX, maxY := 0.0, p.HLine
	for _, s := range p.Series {
		if len(s.X) != len(s.Y) {
			return fmt.Errorf("plot: series %q has %d x and %d y values", s.Name, len(s.X), len(s.Y))
		}
		for i := range s.X {
			maxX, maxY = math.Max(maxX, s.X[i]), math.Max(maxY, s.Y[i])
		}
	}
	maxX, maxY = niceCeil(maxX), niceCeil(maxY*1.1)
	px := func(x float64) int { return padL + int(x/maxX*float64(plotW-padL-padR)) }
	py := func(y float64) int { return plotH - padB - int(y/maxY*float64(plotH-padT-padB)) }
	black := color.RGBA{0, 0, 0, 255}
	grey := color.RGBA{200, 200, 200, 255}

	for i := 0; i <= plotTicks; i++ {
		y := maxY * float64(i) / plotTicks
		line(img, padL, py(y), plotW-padR, py(y), grey, false)
		text(img, 4, py(y)+4, trimFloat(y), black)
		x := maxX * float64(i) / plotTicks
		text(img, px(x)-8, plotH-padB+16, trimFloat(x), black)
	}
	line(img, padL, padT, padL, plotH-padB, black, false)
	line(img, padL, plotH-padB, plotW-padR, plotH-padB, black, false)
	text(img, padL, 20, p.Title, black)
	text(img, (plotW-len(p.XLabel)*7)/2, plotH-12, p.XLabel, black)
	text(img, 4, padT-10, p.YLabel, black)
	if p.HLine > 0 {
		red := color.RGBA{200, 0, 0, 255}
		line(img, padL, py(p.HLine), plotW-padR, py(p.HLine), red, true)
		text(img, plotW-padR-len(p.HLineLabel)*7, py(p.HLine)-4, p.HLineLabel, red)
	}
	for si, s := range p.Series {
		for i := range s.X {
			x, y := px(s.X[i]), py(s.Y[i])
			if i > 0 {
				line(img, px(s.X[i-1]), py(s.Y[i-1]), x, y, s.Colour, false)
			}
			for dx := -plotPointRadius; dx <= plotPointRadius; dx++ {
				for dy := -plotPointRadius; dy <= plotPointRadius; dy++ {
					img.Set(x+dx, y+dy, s.Colour)
				}
			}
		}
		ly := padT + 10 + si*plotLegendLineSpan
		line(img, plotLegendX, ly, plotLegendX+20, ly, s.Colour, false)
		text(img, plotLegendX+26, ly+4, s.Name, black)
	}
	return png.Encode(w, img)
}

// line draws with Bresenham's algorithm; dashed skips every other 6 pixels.
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA, dashed bool) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for n := 0; ; n++ {
		if !dashed || (n/6)%2 == 0 {
			img.Set(x0, y0, c)
		}
		if x0 == x1 && y0 == y1 {
			return
		}
		if e2 := 2 * e; e2 >= dy {
			e += dy
			x0 += sx
		} else {
			e += dx
			y0 += sy
		}
	}
}

func text(img *image.RGBA, x, y int, s string, c color.RGBA) {
	d := &font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	mag := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= v {
			return m * mag
		}
	}
	return 10 * mag
}

func trimFloat(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2g", v)
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func sign(v int) int {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}
