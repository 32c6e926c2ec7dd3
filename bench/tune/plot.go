package tune

import (
	"fmt"
	"image/color"
	"math"
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
// target maxStaleness and the recommended interval marked. Each panel's
// legend stands to the right of its data, so it never hides a line.
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

	stale := newPanel("Staleness seen by reading Redis", "staleness", durationLabel)
	addLines(stale.Plot, []named{
		{"max", series(func(s Step) float64 { return msOf(s.StalenessMax) }), palette[2]},
		{"p99", series(func(s Step) float64 { return msOf(s.StalenessP99) }), palette[1]},
		{"p50", series(func(s Step) float64 { return msOf(s.StalenessP50) }), palette[0]},
	})
	target := plotter.NewFunction(func(float64) float64 { return msOf(maxStaleness) })
	target.Color, target.Dashes = color.RGBA{R: 200, A: 255}, []vg.Length{vg.Points(4), vg.Points(3)}
	stale.Add(target)
	stale.Legend.Add(fmt.Sprintf("target %v", maxStaleness), target)
	// A Function has no data range: make room for the target line.
	stale.Y.Min = min(stale.Y.Min, msOf(maxStaleness))
	stale.Y.Max = max(stale.Y.Max, msOf(maxStaleness))

	cmds := newPanel("Redis load: commands", "commands/s", numberLabel)
	addLines(cmds.Plot, []named{{"commands/s\n(server count)", series(func(s Step) float64 { return s.RedisCommandsPerSec }), palette[3]}})
	bytes := newPanel("Redis load: request bytes", "KB/s", numberLabel)
	addLines(bytes.Plot, []named{{"request KB/s\n(server count)", series(func(s Step) float64 { return s.RedisBytesPerSec / 1e3 }), palette[4]}})

	panels := []panel{stale, cmds, bytes}
	for _, p := range panels {
		// Log axes: a margin of a fifth of a decade keeps points off the frame.
		p.Y.Min, p.Y.Max = p.Y.Min/1.6, p.Y.Max*1.6
		p.X.Min, p.X.Max = msOf(r.Steps[0].Interval)/1.3, msOf(r.Steps[len(r.Steps)-1].Interval)*1.3
	}
	if rec.Step != nil {
		for _, p := range panels {
			markX(p.Plot, msOf(rec.Step.Interval), fmt.Sprintf("recommended\n%v", rec.Step.Interval))
		}
	}
	title := fmt.Sprintf("Flush interval trade-off: %s keys, %s adds/s target, %d goroutines",
		numberLabel(float64(r.Options.Keys)), numberLabel(r.Options.Rate), r.Options.Goroutines)
	return save(title, "flush interval (log scale)", panels, path, ext)
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

// panel is one of the chart's plots and the label of its y axis, which
// save draws itself: gonum centres an axis label on the arithmetic middle
// of the range, which on a log axis lies near its end and pads the plot.
type panel struct {
	*plot.Plot
	ylabel string
}

// newPanel returns a panel with log axes against the flush interval, both
// ticked by logTicks; yticks formats the y axis' labels.
func newPanel(title, ylabel string, yticks func(float64) string) panel {
	p := plot.New()
	p.Title.Text = title
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = logTicks{durationLabel}, logTicks{yticks}
	p.Add(plotter.NewGrid())
	p.Legend.Top, p.Legend.Left = true, true
	return panel{Plot: p, ylabel: ylabel + " (log scale)"}
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
	l, err := plotter.NewLine(plotter.XYs{{X: x, Y: p.Y.Min}, {X: x, Y: p.Y.Max}})
	if err != nil {
		return
	}
	l.Color = color.RGBA{G: 130, A: 255}
	l.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
	p.Add(l)
	p.Legend.Add(label, l)
}

// legendWidth is the column right of the panels where their legends stand.
const legendWidth = 1.7 * vg.Inch

// save draws title over the panels, one above the other with their data
// areas lined up, each with its legend beside it, xlabel under the last,
// and writes the image.
func save(title, xlabel string, panels []panel, path, ext string) error {
	w, h := 9*vg.Inch, 10*vg.Inch
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
	text := plot.New().X.Label.TextStyle
	head := text
	head.Font.Size = vg.Points(14)
	head.XAlign, head.YAlign = draw.XCenter, draw.YTop
	c.FillText(head, vg.Point{X: c.Center().X, Y: c.Max.Y - vg.Millimeter*2}, title)
	lineH := text.Height(xlabel)
	// The body leaves room for the title above, the x label below, the y
	// labels on the left and the legends on the right.
	body := draw.Crop(c, lineH*1.5, -legendWidth, lineH*1.5, -head.Height(title)-vg.Millimeter*4)
	tiles := draw.Tiles{Rows: len(panels), Cols: 1, PadY: vg.Millimeter * 8,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 4}
	// Line the data areas up: widen each panel's tick labels to the widest.
	var axisW vg.Length
	for i, p := range panels {
		tc := tiles.At(body, 0, i)
		axisW = max(axisW, p.DataCanvas(tc).Min.X-tc.Min.X)
	}
	var data draw.Canvas
	for i, p := range panels {
		tc := tiles.At(body, 0, i)
		tc = draw.Crop(tc, axisW-(p.DataCanvas(tc).Min.X-tc.Min.X), 0, 0, 0)
		// Draw the legend apart, in the column beside the panel's data.
		legend := p.Legend
		p.Legend = plot.NewLegend()
		p.Draw(tc)
		data = p.DataCanvas(tc)
		legend.Draw(draw.Canvas{Canvas: c.Canvas, Rectangle: vg.Rectangle{
			Min: vg.Point{X: body.Max.X + vg.Millimeter*2, Y: data.Min.Y},
			Max: vg.Point{X: c.Max.X, Y: data.Max.Y},
		}})
		ylabel := text
		ylabel.Rotation = math.Pi / 2
		ylabel.XAlign, ylabel.YAlign = draw.XCenter, draw.YCenter
		c.FillText(ylabel, vg.Point{X: c.Min.X + lineH, Y: data.Center().Y}, p.ylabel)
	}
	xl := text
	xl.XAlign, xl.YAlign = draw.XCenter, draw.YBottom
	c.FillText(xl, vg.Point{X: data.Center().X, Y: c.Min.Y + vg.Millimeter}, xlabel)
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
