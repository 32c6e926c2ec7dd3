package window_test

import (
	"fmt"

	"github.com/abacus-go/abacus/engine/window"
	"github.com/abacus-go/abacus/queue"
)

// A consumer of finalized windows decodes each message's body; the
// message ID is derived from the window, so a second copy is recognisable.
func ExampleParseRecord() {
	body := []byte(`{"name":"pv:/home","start_ms":1700000040000,"size_ms":60000,"total":1234}`)
	msg := queue.Encode(window.MessageID("pv:/home", 1700000040000, 60000), body)

	id, b, _ := queue.Decode(msg)
	r, _ := window.ParseRecord(b)
	fmt.Println(r.Name, r.Start().UTC().Format("15:04"), r.Total)
	fmt.Println(id == window.MessageID(r.Name, r.StartMS, r.SizeMS))
	// Output:
	// pv:/home 22:14 1234
	// true
}
