// Package registry is the keyed, source-aware table that built-ins and
// plugins register extensions into (countdowns, callbacks). A reload swaps
// one source's entries atomically.
package registry

import (
	"fmt"
	"maps"
	"slices"
	"sync"
)

// Registry maps keys to values of T, remembering which source (a plugin
// file, or "builtin") registered each. The zero value is empty and ready;
// it is safe for concurrent use.
type Registry[T any] struct {
	mu      sync.RWMutex
	entries map[string]item[T]
}

type item[T any] struct {
	value  T
	source string
}

// Register adds value under key. A taken key is an error naming both sources.
func (r *Registry[T]) Register(source, key string, value T) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.entries == nil {
		r.entries = map[string]item[T]{}
	}
	return register(r.entries, source, key, value)
}

func register[T any](m map[string]item[T], source, key string, value T) error {
	if key == "" {
		return fmt.Errorf("%s: empty key", source)
	}
	if old, ok := m[key]; ok {
		return fmt.Errorf("%s: key %q is already registered by %s", source, key, old.source)
	}
	m[key] = item[T]{value: value, source: source}
	return nil
}

// Replace atomically swaps every entry of source for entries (key → value).
// On a conflict nothing changes and the error names the key.
func (r *Registry[T]) Replace(source string, entries map[string]T) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	next := make(map[string]item[T], len(r.entries)+len(entries))
	for k, it := range r.entries {
		if it.source != source {
			next[k] = it
		}
	}
	for _, k := range slices.Sorted(maps.Keys(entries)) {
		if err := register(next, source, k, entries[k]); err != nil {
			return err
		}
	}
	r.entries = next
	return nil
}

// Lookup returns the value under key.
func (r *Registry[T]) Lookup(key string) (T, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	it, ok := r.entries[key]
	return it.value, ok
}

// Source returns who registered key.
func (r *Registry[T]) Source(key string) string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.entries[key].source
}

// Keys returns the registered keys, sorted.
func (r *Registry[T]) Keys() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Sorted(maps.Keys(r.entries))
}

// Of returns the entries source registered, for rolling back a Replace.
func (r *Registry[T]) Of(source string) map[string]T {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := map[string]T{}
	for k, it := range r.entries {
		if it.source == source {
			out[k] = it.value
		}
	}
	return out
}
