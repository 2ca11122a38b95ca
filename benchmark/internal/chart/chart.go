// Package chart draws the benchmark charts of docs/ as PNG files with
// gonum.org/v1/plot.
package chart

import (
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Series is one named line of (X, Y) points.
type Series struct {
	Name string
	X, Y []float64
}

// Chart is a line chart with a legend.
type Chart struct {
	Title, XLabel, YLabel string
	// LogX and LogY put an axis on a log10 scale; only positive values are
	// drawn on it.
	LogX, LogY bool
	// Diagonal adds a dashed y = x reference line (offered = carried).
	Diagonal bool
	// CDF draws y from 0 to 1 with the legend bottom right, out of the
	// way of curves that rise on the left.
	CDF    bool
	Series []Series
}

// palette: distinguishable in colour and when printed grey.
var palette = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
	color.RGBA{R: 0x8c, G: 0x56, B: 0x4b, A: 0xff},
}

// Save draws c into a PNG file of w x h inches at path.
func (c Chart) Save(path string, w, h vg.Length) error {
	p := plot.New()
	p.Title.Text = c.Title
	p.X.Label.Text = c.XLabel
	p.Y.Label.Text = c.YLabel
	p.Legend.Top = !c.CDF
	p.Legend.Left = !c.CDF
	p.Legend.Padding = vg.Points(4)
	p.Add(plotter.NewGrid())
	if c.LogX {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	if c.LogY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	drawn := 0
	for i, s := range c.Series {
		pts := make(plotter.XYs, 0, len(s.X))
		for j := range s.X {
			x, y := s.X[j], s.Y[j]
			if (c.LogX && x <= 0) || (c.LogY && y <= 0) || math.IsNaN(x) || math.IsNaN(y) {
				continue
			}
			pts = append(pts, plotter.XY{X: x, Y: y})
			lo, hi = math.Min(lo, x), math.Max(hi, x)
		}
		if len(pts) == 0 {
			continue
		}
		l, sc, err := plotter.NewLinePoints(pts)
		if err != nil {
			return fmt.Errorf("chart %q, series %q: %w", c.Title, s.Name, err)
		}
		col := palette[i%len(palette)]
		l.Color = col
		l.Width = vg.Points(1.5)
		sc.Color = col
		sc.Shape = draw.CircleGlyph{}
		sc.Radius = vg.Points(1.5)
		if len(pts) > 60 {
			sc.Radius = 0 // a dense CDF reads better as a plain line
		}
		p.Add(l, sc)
		p.Legend.Add(s.Name, l)
		drawn++
	}
	if drawn == 0 {
		return fmt.Errorf("chart %q: no data to draw", c.Title)
	}
	if c.Diagonal && hi > lo {
		d := plotter.NewFunction(func(x float64) float64 { return x })
		d.XMin, d.XMax = lo, hi
		d.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		d.Color = color.Gray{Y: 0x80}
		p.Add(d)
		p.Legend.Add("offered = carried", d)
	}
	if c.CDF {
		p.Y.Min, p.Y.Max = 0, 1
	}
	if err := p.Save(w, h, path); err != nil {
		return fmt.Errorf("write chart %s: %w", path, err)
	}
	return nil
}
