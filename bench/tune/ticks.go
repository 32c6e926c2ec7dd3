package tune

import (
	"math"
	"strconv"
	"time"

	"gonum.org/v1/plot"

	"github.com/abacus-go/abacus/bench/internal/numfmt"
)

// logTicks marks a log axis at every integer multiple of each power of
// ten and labels 1, 2 and 5 times each power (only the powers beyond
// three and a half decades, where 1-2-5 labels would crowd), so every
// axis carries several labels however narrow its range. Label formats a
// labelled value.
type logTicks struct {
	label func(float64) string
}

var _ plot.Ticker = logTicks{}

// Ticks returns the ticks in [lo, hi]; none for a range that is not
// positive.
func (t logTicks) Ticks(lo, hi float64) []plot.Tick {
	if lo <= 0 || hi < lo {
		return nil
	}
	labelled := func(m int) bool { return m == 1 || m == 2 || m == 5 }
	if math.Log10(hi/lo) > 3.5 {
		labelled = func(m int) bool { return m == 1 }
	}
	const eps = 1e-9 // 3 × 0.1 is not quite 0.3
	var ticks []plot.Tick
	labels := 0
	for e := math.Floor(math.Log10(lo)); math.Pow(10, e) <= hi*(1+eps); e++ {
		for m := 1; m <= 9; m++ {
			v := float64(m) * math.Pow(10, e)
			if v < lo*(1-eps) || v > hi*(1+eps) {
				continue
			}
			tk := plot.Tick{Value: v}
			if labelled(m) {
				tk.Label = t.label(v)
				labels++
			}
			ticks = append(ticks, tk)
		}
	}
	if labels < 2 { // a range within a factor of about two: label every tick
		labels = 0
		for i := range ticks {
			ticks[i].Label = t.label(ticks[i].Value)
			labels++
		}
	}
	if labels < 2 { // not even two multiples inside: label the ends
		ticks = append(ticks, plot.Tick{Value: lo, Label: t.label(lo)}, plot.Tick{Value: hi, Label: t.label(hi)})
	}
	return ticks
}

// numberLabel writes v with thousands separators ("20,000", "0.5").
func numberLabel(v float64) string {
	if v < 1000 {
		return strconv.FormatFloat(roundSig(v), 'f', -1, 64)
	}
	return numfmt.Thousands(v)
}

// durationLabel writes v milliseconds as a duration ("20ms", "5s").
func durationLabel(v float64) string {
	return time.Duration(roundSig(v) * float64(time.Millisecond)).String()
}

// roundSig rounds v to 3 significant digits, hiding float noise.
func roundSig(v float64) float64 {
	if v == 0 {
		return 0
	}
	p := math.Pow(10, 2-math.Floor(math.Log10(math.Abs(v))))
	return math.Round(v*p) / p
}
