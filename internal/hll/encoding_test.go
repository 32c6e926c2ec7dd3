package hll

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestEncodeSparseExample encodes the example of Redis' hyperloglog.c:
// registers 1000, 1020 and 1021 at 2, 3 and 3 are XZERO:1000 VAL:2,1
// ZERO:19 VAL:3,2 XZERO:15362.
func TestEncodeSparseExample(t *testing.T) {
	got := Encode(nil, []Update{{Reg: 1000, Rank: 2}, {Reg: 1020, Rank: 3}, {Reg: 1021, Rank: 3}})
	want := append([]byte("HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80"),
		0x40|0x03, 0xe7, 0x80|1<<2, 18, 0x80|2<<2|1, 0x40|0x3c, 0x01)
	if !bytes.Equal(got, want) {
		t.Errorf("Encode = % x\nwant     % x", got, want)
	}
}

func TestEncodeForms(t *testing.T) {
	// spaced is n registers from first on, step apart, at rank.
	spaced := func(first, n, step int, rank uint8) []Update {
		var us []Update
		for i := range n {
			us = append(us, Update{Reg: uint16(first + i*step), Rank: rank})
		}
		return us
	}
	for _, tc := range []struct {
		name    string
		us      []Update
		form    byte
		wantLen int
	}{
		{"empty", nil, sparse, headerLen + 2},
		{"first and last", []Update{{Reg: 0, Rank: 1}, {Reg: NumRegisters - 1, Rank: 32}}, sparse, headerLen + 1 + 2 + 1},
		{"gap of 64 is ZERO", []Update{{Reg: 64, Rank: 5}}, sparse, headerLen + 1 + 1 + 2},
		{"gap of 65 is XZERO", []Update{{Reg: 65, Rank: 5}}, sparse, headerLen + 2 + 1 + 2},
		{"run of 5 is two VALs", spaced(100, 5, 1, 7), sparse, headerLen + 2 + 2 + 2},
		{"rank 33 is dense", []Update{{Reg: 7, Rank: 33}}, dense, DenseLen},
		{"too long for sparse", spaced(0, SparseMaxLen/2, 2, 1), dense, DenseLen},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := Encode(nil, tc.us)
			if b[4] != tc.form || len(b) != tc.wantLen {
				t.Errorf("Encode: form %d, %d bytes; want form %d, %d bytes", b[4], len(b), tc.form, tc.wantLen)
			}
			var r Registers
			if err := r.MergeEncoded(b); err != nil {
				t.Fatalf("MergeEncoded(Encode(...)): %v", err)
			}
			if got := r.Updates(nil); !slices.Equal(got, tc.us) {
				t.Errorf("round trip: %d registers, want %d", len(got), len(tc.us))
			}
		})
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 10, 100, 1000, 5000, NumRegisters} {
		for _, maxRank := range []int{4, 32, MaxRank} {
			var want Registers
			for range n {
				want.Set(uint16(rng.IntN(NumRegisters)), uint8(1+rng.IntN(maxRank)))
			}
			var got Registers
			if err := got.MergeEncoded(Encode(nil, want.Updates(nil))); err != nil {
				t.Fatalf("%d registers up to rank %d: MergeEncoded: %v", n, maxRank, err)
			}
			if got != want {
				t.Errorf("%d registers up to rank %d: the round trip changed them", n, maxRank)
			}
		}
	}
}

func TestMergeEncodedRejectsInvalid(t *testing.T) {
	valid := Encode(nil, []Update{{Reg: 3, Rank: 4}})
	header := valid[:headerLen]
	with := func(b []byte, i int, v byte) []byte {
		b = slices.Clone(b)
		b[i] = v
		return b
	}
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"short", []byte("HYLL")},
		{"magic", with(valid, 0, 'X')},
		{"encoding", with(valid, 4, 2)},
		{"dense length", append(Encode(nil, []Update{{Reg: 3, Rank: 40}}), 0)},
		{"sparse too short", append(slices.Clone(header), 0x40|0x3f, 0xfe)},
		{"sparse too long", append(slices.Clone(valid), 0)},
		{"VAL past the end", append(slices.Clone(header), 0x40|0x3f, 0xfe, 0x80|3)},
		{"cut XZERO", append(slices.Clone(header), 0x40)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Registers{5: 9}
			if err := r.MergeEncoded(tc.b); !errors.Is(err, ErrInvalid) {
				t.Errorf("MergeEncoded = %v; want ErrInvalid", err)
			}
			if r != (Registers{5: 9}) {
				t.Error("MergeEncoded changed the registers")
			}
		})
	}
}
