package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/abacus-go/abacus/serial"
)

// ss abbreviates the type of the serial stat table.
type ss = serial.Stats

// serialStatTable lists an allocator's metrics; see the package comment.
var serialStatTable = []stat[ss]{
	counter("issued_ids_total", "IDs handed out by Next and NextN.", func(s ss) float64 { return float64(s.Issued) }),
	counter("blocks_total", "Blocks accepted from Redis.", func(s ss) float64 { return float64(s.Blocks) }),
	counter("round_trips_total", "Block fetches sent to Redis.", func(s ss) float64 { return float64(s.RoundTrips) }),
	counter("fetch_errors_total", "Block fetches that failed, unreplicated blocks included.", func(s ss) float64 { return float64(s.FetchErrors) }),
	counter("unreplicated_blocks_total", "Blocks discarded because fewer replicas than wanted acknowledged them.", func(s ss) float64 { return float64(s.Unreplicated) }),
	counter("regressions_total", "Blocks refused because Redis went backwards.", func(s ss) float64 { return float64(s.Regressions) }),
	counter("waits_total", "Next or NextN calls that found no ID at hand and waited for Redis.", func(s ss) float64 { return float64(s.Waits) }),
	gauge("failing_fetches", "Fetches failed since the last one that succeeded.", func(s ss) float64 { return float64(s.Failing) }),
	gauge("wait_replicas", "Replicas the last fetch waited for.", func(s ss) float64 { return float64(s.Replicas) }),
	gauge("block_size", "IDs the next fetch requests.", func(s ss) float64 { return float64(s.BlockSize) }),
	gauge("block_remaining", "IDs left in the current block.", func(s ss) float64 { return float64(s.Remaining) }),
	gauge("blocks_ahead", "Acknowledged blocks held beyond the current one.", func(s ss) float64 { return float64(s.Ahead) }),
	gauge("ids_in_hand", "IDs that can be issued without Redis.", func(s ss) float64 { return float64(s.InHand) }),
	gauge("ids_per_second", "Rate at which IDs were issued, measured at the last block boundary; 0 before the first.", func(s ss) float64 { return s.Rate }),
	gauge("runway_seconds", "How long the IDs in hand last at the measured rate; 0 while the rate is unknown.", func(s ss) float64 { return s.Runway.Seconds() }),
	gauge("fetch_seconds", "Longest recent block fetch, decaying: how far ahead of the end of a block the next is fetched.", func(s ss) float64 { return s.FetchTime.Seconds() }),
	gauge("high_water", "End of the highest block accepted: no ID issued or issuable before the next fetch is above it.", func(s ss) float64 { return float64(s.HighWater) }),
}

func serialStats(a *serial.Allocator) part {
	return newFamily("serial", serialStatTable, prometheus.Labels{"serial": a.Key()}, a.Stats)
}
