// Package numfmt formats the figures bench prints, for people.
package numfmt

import (
	"strconv"
	"strings"
)

// Thousands rounds v (≥ 0) to an integer and writes it with comma
// thousands separators ("12,345,678").
func Thousands(v float64) string {
	s := strconv.FormatInt(int64(v+0.5), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
