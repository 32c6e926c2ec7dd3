package serial

import (
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults applied to zero Options fields.
const (
	DefaultMinBlock          = 100
	DefaultMaxBlock          = 100_000
	DefaultTargetLifetime    = 10 * time.Second
	DefaultPrefetchThreshold = 0.5
	DefaultWaitTimeout       = 500 * time.Millisecond
)

// Options configures an Allocator. The zero value means every default;
// New applies defaults to a copy and returns an *OptionError for an invalid
// field.
type Options struct {
	// MinBlock is the smallest block leased with one INCRBY, and the size of
	// the first one. Default 100. Set MinBlock == MaxBlock for a fixed size.
	MinBlock int64
	// MaxBlock is the largest block. It bounds the IDs lost when a process
	// exits (at most two blocks: the current one and the prefetched one).
	// Default 100,000, or MinBlock if that is larger. MinBlock must not
	// exceed it.
	MaxBlock int64
	// TargetLifetime is how long a block should last at the observed rate;
	// block size moves toward rate × TargetLifetime (see sizing.go).
	// Default 10s.
	TargetLifetime time.Duration
	// PrefetchThreshold is the share of the current block, in (0, 1), that
	// may still be unused when the next block is fetched in the background.
	// Default 0.5: the next block is requested once half of the current one
	// is issued, leaving Redis half a block lifetime to answer. (Meituan
	// Leaf's segment mode loads at 10 % used, i.e. 0.9 here.) Values near 0
	// effectively disable prefetch.
	PrefetchThreshold float64
	// WaitReplicas, when positive, makes every block fetch run WAIT for
	// that many replicas after INCRBY (on the same connection, one
	// pipeline); a block not acknowledged by WaitTimeout is discarded and
	// the fetch fails with a *ReplicationError. Default 0: no WAIT.
	WaitReplicas int
	// WaitTimeout bounds WAIT. Default 500ms. It must be shorter than the
	// client's ReadTimeout, since the WAIT reply is read with it.
	WaitTimeout time.Duration
	// Now is the clock used to measure block lifetimes. Default time.Now.
	Now func() time.Time
}

// resolve validates o and returns it with defaults applied. rdb is used only
// to compare WaitTimeout with the client's ReadTimeout, when it tells it.
func (o Options) resolve(rdb redis.UniversalClient) (Options, error) {
	switch {
	case o.MinBlock < 0:
		return o, &OptionError{"MinBlock", o.MinBlock, "must be positive (0 means 100)"}
	case o.MaxBlock < 0:
		return o, &OptionError{"MaxBlock", o.MaxBlock, "must be positive (0 means 100000)"}
	case o.TargetLifetime < 0:
		return o, &OptionError{"TargetLifetime", o.TargetLifetime, "must be positive (0 means 10s)"}
	case o.PrefetchThreshold != 0 && !(o.PrefetchThreshold > 0 && o.PrefetchThreshold < 1):
		return o, &OptionError{"PrefetchThreshold", o.PrefetchThreshold, "must be in (0, 1) (0 means 0.5)"}
	case o.WaitReplicas < 0:
		return o, &OptionError{"WaitReplicas", o.WaitReplicas, "must not be negative"}
	case o.WaitTimeout < 0:
		return o, &OptionError{"WaitTimeout", o.WaitTimeout, "must be positive (0 means 500ms)"}
	}
	if o.MinBlock == 0 {
		o.MinBlock = DefaultMinBlock
	}
	if o.MaxBlock == 0 {
		o.MaxBlock = max(DefaultMaxBlock, o.MinBlock)
	}
	if o.MinBlock > o.MaxBlock {
		return o, &OptionError{"MinBlock", o.MinBlock, "must not exceed MaxBlock " + strconv.FormatInt(o.MaxBlock, 10)}
	}
	if o.TargetLifetime == 0 {
		o.TargetLifetime = DefaultTargetLifetime
	}
	if o.PrefetchThreshold == 0 {
		o.PrefetchThreshold = DefaultPrefetchThreshold
	}
	if o.WaitTimeout == 0 {
		o.WaitTimeout = DefaultWaitTimeout
	}
	if o.WaitReplicas > 0 {
		if rt := readTimeout(rdb); rt > 0 && o.WaitTimeout >= rt {
			return o, &OptionError{"WaitTimeout", o.WaitTimeout, "must be shorter than the client's ReadTimeout " + rt.String()}
		}
	}
	if o.Now == nil {
		o.Now = time.Now
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
