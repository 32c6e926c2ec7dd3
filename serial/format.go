package serial

import (
	"strconv"
	"time"
)

// DefaultDateFormat is the time layout Format uses when Layout.DateFormat
// is empty: the date as YYYYMMDD followed by a dash.
const DefaultDateFormat = "20060102-"

// maxWidth caps Layout.Width: an int64 has at most 19 digits.
const maxWidth = 19

// Layout describes a human-facing order number: Prefix, then Date in
// DateFormat (when Date is set), then the ID in decimal, zero-padded to
// Width digits. The zero value formats the bare ID.
//
// The ID alone is what makes a number unique; the date is decoration and
// does not restart the sequence. (A per-day sequence is a per-day key:
// serial.New(rdb, "orders:"+day, opts).)
type Layout struct {
	// Prefix is copied verbatim, e.g. "ORD-".
	Prefix string
	// Date, when not the zero time, is formatted with DateFormat in its own
	// location; convert it (t.UTC(), t.In(loc)) to choose the day boundary.
	Date time.Time
	// DateFormat is a time layout. Default DefaultDateFormat ("20060102-").
	DateFormat string
	// Width is the minimum number of digits of the ID; shorter IDs get
	// leading zeros, longer ones are never truncated (truncation would make
	// duplicates). Values above 19 count as 19; 0 or less means no padding.
	Width int
}

// Format returns the order number for id in layout l, e.g.
// Format(123, Layout{Prefix: "ORD-", Date: d, Width: 6}) is
// "ORD-20261125-000123".
func Format(id int64, l Layout) string {
	var buf [64]byte
	return string(AppendFormat(buf[:0], id, l))
}

// AppendFormat appends the order number for id in layout l to dst and
// returns the extended buffer, without allocating when dst has room.
func AppendFormat(dst []byte, id int64, l Layout) []byte {
	dst = append(dst, l.Prefix...)
	if !l.Date.IsZero() {
		f := l.DateFormat
		if f == "" {
			f = DefaultDateFormat
		}
		dst = l.Date.AppendFormat(dst, f)
	}
	if id < 0 {
		dst = append(dst, '-')
		if id == -1<<63 {
			return append(dst, "9223372036854775808"...)
		}
		id = -id
	}
	var digits [20]byte
	d := strconv.AppendInt(digits[:0], id, 10)
	for w := min(l.Width, maxWidth); w > len(d); w-- {
		dst = append(dst, '0')
	}
	return append(dst, d...)
}
