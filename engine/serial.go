package engine

import (
	"sync"

	"github.com/abacus-go/abacus/serial"
)

// serials holds the engine's serial allocators, one per name.
type serials struct {
	mu     sync.Mutex
	byName map[string]*serial.Allocator // guarded by mu
}

// Serial returns the allocator of order IDs named name, stored at Redis
// key Key(name) and configured by Options.Serial. Repeated calls with one
// name return the same allocator; Close closes it. See package serial.
func (e *Engine) Serial(name string) (*serial.Allocator, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	e.serials.mu.Lock()
	defer e.serials.mu.Unlock()
	if e.closed.Load() {
		return nil, ErrClosed
	}
	if a := e.serials.byName[name]; a != nil {
		return a, nil
	}
	a, err := serial.New(e.rdb, e.Key(name), e.opts.Serial)
	if err != nil {
		return nil, err
	}
	if e.serials.byName == nil {
		e.serials.byName = make(map[string]*serial.Allocator)
	}
	e.serials.byName[name] = a
	return a, nil
}

// closeSerials closes every allocator; later Serial calls see closed.
func (e *Engine) closeSerials() error {
	e.serials.mu.Lock()
	defer e.serials.mu.Unlock()
	var first error
	for _, a := range e.serials.byName {
		if err := a.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
