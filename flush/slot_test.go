package flush

import "testing"

func TestSlot(t *testing.T) {
	for _, tc := range []struct {
		key  string
		want int
	}{
		{"123456789", 0x31C3 % 16384}, // the CRC-16/XMODEM check value
		{"foo", 12182},
		{"{user1000}.following", Slot("user1000")},
		{"foo{}{bar}", Slot("foo{}{bar}")}, // empty tag: whole key
		{"foo{{bar}}zap", Slot("{bar")},
	} {
		if got := Slot(tc.key); got != tc.want {
			t.Errorf("Slot(%q) = %d; want %d", tc.key, got, tc.want)
		}
	}
}

func TestSlotTagsCoverEverySlot(t *testing.T) {
	tags := slotTags()
	for sl, tag := range tags {
		if got := Slot("{" + tag + "}:w"); got != sl {
			t.Fatalf("tag %q for slot %d hashes to %d", tag, sl, got)
		}
	}
}
