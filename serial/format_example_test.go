package serial_test

import (
	"fmt"
	"time"

	"github.com/abacus-go/abacus/serial"
)

func ExampleFormat() {
	day := time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC)
	fmt.Println(serial.Format(123, serial.Layout{Prefix: "ORD-", Date: day, Width: 6}))
	fmt.Println(serial.Format(1234567, serial.Layout{Prefix: "ORD-", Date: day, Width: 6}))
	fmt.Println(serial.Format(42, serial.Layout{Prefix: "INV/", Date: day, DateFormat: "2006/", Width: 5}))
	fmt.Println(serial.Format(7, serial.Layout{}))
	// Output:
	// ORD-20261125-000123
	// ORD-20261125-1234567
	// INV/2026/00042
	// 7
}
