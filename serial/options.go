package serial

import (
	"log/slog"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/abacus-go/abacus/internal/invalid"
)

// Defaults applied to zero Options fields.
const (
	DefaultMinBlock          = 100
	DefaultMaxBlock          = 1_000_000_000
	DefaultTargetLifetime    = 10 * time.Second
	DefaultPrefetchThreshold = 0.5
	DefaultReplicaTimeout    = 500 * time.Millisecond
	DefaultReserve           = 60 * time.Second
)

// maxReserveBlocks bounds the blocks held in reserve, whatever the rate
// measured: a burst timed over microseconds must not fetch thousands.
const maxReserveBlocks = 64

// Options configures an Allocator. The zero value means every default;
// New applies defaults to a copy and returns an *InvalidError for an invalid
// field.
type Options struct {
	// Unordered trades the order of IDs within the Allocator for speed
	// under contention: Next hands IDs out of lanes instead of from the
	// block itself, so goroutines running at once rarely touch the same
	// cache line. New makes 4×GOMAXPROCS lanes (rounded up to a power of
	// two); a goroutine uses the one its stack address hashes to, so lanes
	// are shared, not per goroutine. Each lane holds a chunk of the current
	// block: the block's size / (2 × lanes) IDs, at most 4096. IDs stay
	// unique (across Allocators and processes too) and at least 1, but
	// follow no order, not even between two calls from one goroutine (its
	// lane depends on where in its stack it calls from); the chunks in hand
	// when a process exits are lost with its block. NextN still returns
	// increasing IDs. While chunks would be smaller than 64 IDs, that is
	// for blocks smaller than 128 × lanes (1024 IDs at GOMAXPROCS 2, 4096
	// at 8), Next takes from the block as without lanes: so do the first
	// blocks at the default MinBlock of 100. Default false: strictly
	// increasing.
	Unordered bool
	// MinBlock is the smallest block leased with one INCRBY, and the size of
	// the first one. Default 100. Set MinBlock == MaxBlock for a fixed size.
	MinBlock int64
	// MaxBlock is the largest block. With the Reserve it bounds the IDs
	// lost when a process exits: the rest of the current block and the
	// blocks held ahead (one, or up to 64 with a Reserve); since the size
	// follows the rate, it binds only above MaxBlock / TargetLifetime IDs/s.
	// Default 10^9, a block of TargetLifetime's 10s up to 100M IDs/s, or
	// MinBlock if that is larger. MinBlock must not exceed it. A MaxBlock
	// smaller than the IDs issued during one fetch (Stats.FetchTime × Rate)
	// makes callers wait for Redis at every block.
	MaxBlock int64
	// TargetLifetime is how long a block should last at the observed rate;
	// block size moves toward rate × TargetLifetime (see sizing.go).
	// Default 10s.
	TargetLifetime time.Duration
	// PrefetchThreshold is the share of the current block, in (0, 1), that
	// may still be unused when the next block is fetched in the background.
	// Default 0.5: the next block is requested once half of the current one
	// is issued, leaving Redis half a block lifetime to answer. (Meituan
	// Leaf's segment mode loads at 10 % used, i.e. 0.9 here.) It is
	// requested earlier when fetches have been slow, so that the IDs left
	// last four times the longest recent fetch (see Stats.FetchTime). Values
	// near 0 leave the timing to the fetch time alone.
	PrefetchThreshold float64
	// Replicas is how many replicas must acknowledge a block (WAIT
	// after INCRBY, in one pipeline on the key's master) before any of its
	// IDs is issued. A block fewer replicas acknowledged within ReplicaTimeout
	// is discarded, never issued: its IDs become a gap, and a later fetch
	// gets a block above it. So a failover to the acknowledging replica
	// cannot hand its IDs to another process. Default 0, "auto": one
	// replica once the master has been seen with one or with a
	// replication backlog (asked at most every second until then), and
	// from then on, even while none is connected (a failover in progress
	// looks like that); no WAIT while none was ever
	// seen. Negative: never wait; a failover may then lose blocks already
	// issued and grant their IDs again, which no Allocator can always
	// detect (see RegressionError).
	Replicas int
	// ReplicaTimeout bounds each WAIT. Default 500ms, or half the client's
	// ReadTimeout if that is shorter than 1s. It must be shorter than the
	// ReadTimeout, since the WAIT reply is read with it.
	ReplicaTimeout time.Duration
	// Reserve is how long the acknowledged blocks held beyond the current
	// one should last at the measured rate: the Allocator fetches ahead
	// until they do (at most 64 blocks, so above 64 × MaxBlock / Reserve
	// IDs/s it holds less: raise MaxBlock). It is what keeps Next issuing
	// through a failover, while the old master is gone and the new one has
	// no replica to acknowledge a block yet; failed fetches are retried in
	// the background meanwhile. Default 0: 60s while the Allocator waits
	// for replicas (Sentinel's default down-after-milliseconds of 30s,
	// promotion and the new master's first replica sync fit in it), none
	// otherwise. Negative: none. Without a reserve one block is fetched
	// ahead, at PrefetchThreshold.
	Reserve time.Duration
	// Logger, when not nil, receives the Allocator's lifecycle events,
	// each with its key, once per change of state, not per retry: in a
	// spell of failed fetches, its first failure unless that is a block
	// too few replicas acknowledged (Warn, "block fetch failing"), and its
	// first such block (Warn, "block discarded"); the fetch that ends the
	// spell (Info, with how many fetches failed, how many of their blocks
	// were discarded, and how long since the first failure); in auto mode
	// (Replicas 0), the first fetch that waits for a replica, once one was
	// seen (Info); Redis losing writes (Error, with the RegressionError);
	// a Resume that clears a regression (Info, with the floor). Default
	// none.
	Logger *slog.Logger
}

// resolve validates o and returns it with defaults applied. rdb is used only
// to compare ReplicaTimeout with the client's ReadTimeout, when it tells it.
func (o Options) resolve(rdb redis.UniversalClient) (Options, error) {
	switch {
	case o.MinBlock < 0:
		return o, invalid.New(ErrInvalid, "Options.MinBlock", o.MinBlock, "must be positive (0 means 100)")
	case o.MaxBlock < 0:
		return o, invalid.New(ErrInvalid, "Options.MaxBlock", o.MaxBlock, "must be positive (0 means 1000000000)")
	case o.TargetLifetime < 0:
		return o, invalid.New(ErrInvalid, "Options.TargetLifetime", o.TargetLifetime, "must be positive (0 means 10s)")
	case o.PrefetchThreshold != 0 && !(o.PrefetchThreshold > 0 && o.PrefetchThreshold < 1):
		return o, invalid.New(ErrInvalid, "Options.PrefetchThreshold", o.PrefetchThreshold, "must be in (0, 1) (0 means 0.5)")
	case o.ReplicaTimeout < 0:
		return o, invalid.New(ErrInvalid, "Options.ReplicaTimeout", o.ReplicaTimeout, "must be positive (0 means 500ms)")
	}
	if o.MinBlock == 0 {
		o.MinBlock = DefaultMinBlock
	}
	if o.MaxBlock == 0 {
		o.MaxBlock = max(DefaultMaxBlock, o.MinBlock)
	}
	if o.MinBlock > o.MaxBlock {
		return o, invalid.New(ErrInvalid, "Options.MinBlock", o.MinBlock, "must not exceed MaxBlock "+strconv.FormatInt(o.MaxBlock, 10))
	}
	if o.TargetLifetime == 0 {
		o.TargetLifetime = DefaultTargetLifetime
	}
	if o.PrefetchThreshold == 0 {
		o.PrefetchThreshold = DefaultPrefetchThreshold
	}
	rt := readTimeout(rdb)
	switch {
	case o.ReplicaTimeout == 0 && rt > 0 && rt < 2*DefaultReplicaTimeout:
		o.ReplicaTimeout = rt / 2
	case o.ReplicaTimeout == 0:
		o.ReplicaTimeout = DefaultReplicaTimeout
	case o.Replicas >= 0 && rt > 0 && o.ReplicaTimeout >= rt:
		return o, invalid.New(ErrInvalid, "Options.ReplicaTimeout", o.ReplicaTimeout, "must be shorter than the client's ReadTimeout "+rt.String())
	}
	return o, nil
}

// readTimeout is the client's effective ReadTimeout, or 0 when unknown or
// unlimited.
func readTimeout(rdb redis.UniversalClient) time.Duration {
	switch c := rdb.(type) {
	case *redis.Client:
		return c.Options().ReadTimeout
	case *redis.ClusterClient:
		return c.Options().ReadTimeout
	}
	return 0
}
