package tune

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Plot writes a chart of the sweep to path, as PNG or SVG by its
// extension: staleness (p50, p99, max and the bound), Redis commands/s and
// Redis bytes/s against the flush interval, all on log axes, with the
// target maxStaleness and the recommended interval marked.
func (r *Report) Plot(path string, maxStaleness time.Duration) error {
	if len(r.Steps) == 0 {
		return fmt.Errorf("tune: nothing to plot")
	}
	ext := strings.ToLower(filepath.Ext(path))
	if ext != ".png" && ext != ".svg" {
		return fmt.Errorf("tune: plot %s: want a .png or .svg file", path)
	}
	rec := r.Recommend(maxStaleness)
	msOf := func(d time.Duration) float64 { return max(float64(d)/1e6, 0.01) }
	series := func(f func(s Step) float64) plotter.XYs {
		xy := make(plotter.XYs, len(r.Steps))
		for i, s := range r.Steps {
			xy[i].X, xy[i].Y = msOf(s.Interval), max(f(s), 1e-3)
		}
		return xy
	}

	stale := panel("Staleness seen by reading Redis", "staleness (ms, log)")
	stale.Legend.Left = true // the curves rise to the right
	stale.Title.Text = fmt.Sprintf("Flush interval trade-off: %d keys, %.0f adds/s target, %d goroutines",
		r.Options.Keys, r.Options.Rate, r.Options.Goroutines)
	addLines(stale, []named{
		{"max", series(func(s Step) float64 { return msOf(s.StalenessMax) }), palette[2]},
		{"p99", series(func(s Step) float64 { return msOf(s.StalenessP99) }), palette[1]},
		{"p50", series(func(s Step) float64 { return msOf(s.StalenessP50) }), palette[0]},
	})
	target := plotter.NewFunction(func(float64) float64 { return msOf(maxStaleness) })
	target.Color, target.Dashes = color.RGBA{R: 200, A: 255}, []vg.Length{vg.Points(4), vg.Points(3)}
	stale.Add(target)
	stale.Legend.Add(fmt.Sprintf("target %v", maxStaleness), target)
	// A Function has no data range: make room for the target line.
	stale.Y.Min = min(stale.Y.Min, msOf(maxStaleness)/1.5)
	stale.Y.Max = max(stale.Y.Max, msOf(maxStaleness)*1.5)

	cmds := panel("Redis load", "Redis commands/s (log)")
	addLines(cmds, []named{{"commands/s (server count)", series(func(s Step) float64 { return s.RedisCommandsPerSec }), palette[3]}})
	bytes := panel("", "Redis input KB/s (log)")
	bytes.X.Label.Text = "flush interval (ms, log scale)"
	addLines(bytes, []named{{"request KB/s", series(func(s Step) float64 { return s.RedisBytesPerSec / 1e3 }), palette[4]}})

	plots := [][]*plot.Plot{{stale}, {cmds}, {bytes}}
	if rec.Step != nil {
		x := msOf(rec.Step.Interval)
		for _, row := range plots {
			markX(row[0], x, fmt.Sprintf("recommended %v", rec.Step.Interval))
		}
	}
	// A shared x range, so the panels line up.
	for _, row := range plots {
		row[0].X.Min, row[0].X.Max = msOf(r.Steps[0].Interval)/1.3, msOf(r.Steps[len(r.Steps)-1].Interval)*1.3
	}
	return save(plots, path, ext)
}

type named struct {
	name  string
	xy    plotter.XYs
	color color.Color
}

var palette = []color.Color{
	color.RGBA{R: 31, G: 119, B: 180, A: 255},
	color.RGBA{R: 255, G: 127, B: 14, A: 255},
	color.RGBA{R: 214, G: 39, B: 40, A: 255},
	color.RGBA{R: 44, G: 160, B: 44, A: 255},
	color.RGBA{R: 148, G: 103, B: 189, A: 255},
}

func panel(title, ylabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = ylabel
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = plot.LogTicks{Prec: -1}, plot.LogTicks{Prec: -1}
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	return p
}

func addLines(p *plot.Plot, lines []named) {
	for _, l := range lines {
		line, points, err := plotter.NewLinePoints(l.xy)
		if err != nil {
			continue // a NaN or Inf: leave the series out rather than fail the chart
		}
		line.Color, points.Color = l.color, l.color
		line.Width = vg.Points(1.5)
		p.Add(line, points)
		p.Legend.Add(l.name, line, points)
	}
}

// markX draws a vertical dashed line at x across p's data range.
func markX(p *plot.Plot, x float64, label string) {
	lo, hi := p.Y.Min, p.Y.Max
	if lo <= 0 {
		lo = 1e-3
	}
	l, err := plotter.NewLine(plotter.XYs{{X: x, Y: lo}, {X: x, Y: hi}})
	if err != nil {
		return
	}
	l.Color = color.RGBA{G: 130, A: 255}
	l.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
	p.Add(l)
	p.Legend.Add(label, l)
}

func save(plots [][]*plot.Plot, path, ext string) error {
	w, h := 8*vg.Inch, 9*vg.Inch
	var c draw.Canvas
	var svg *vgsvg.Canvas
	var img *vgimg.Canvas
	if ext == ".svg" {
		svg = vgsvg.New(w, h)
		c = draw.New(svg)
	} else {
		img = vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(120), vgimg.UseBackgroundColor(color.White))
		c = draw.New(img)
	}
	tiles := draw.Tiles{Rows: len(plots), Cols: 1, PadX: vg.Millimeter * 2, PadY: vg.Millimeter * 4,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 4}
	canvases := plot.Align(plots, tiles, c)
	for i := range plots {
		plots[i][0].Draw(canvases[i][0])
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if svg != nil {
		_, err = svg.WriteTo(f)
	} else {
		_, err = vgimg.PngCanvas{Canvas: img}.WriteTo(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
