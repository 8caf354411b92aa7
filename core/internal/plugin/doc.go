// Package plugin is the WebAssembly plugin host: it loads every *.wasm file
// of a directory with wazero, checks that each speaks ABI v1 (sdk/ABI.md),
// reads its manifest and hands what it declares (countdowns with their
// kwargs validators, callbacks) to a Sink as plain functions.
//
// Each plugin file is compiled once (wazero's file compilation cache) and
// served by a pool of instances, one call at a time per instance. Every call
// runs under a deadline that closes the instance when it passes; memory is
// capped; guests get WASI preview 1 without files, network or environment,
// with crypto random, the real clock, no real sleep, and their stdout,
// stderr and log calls go to the structured log, size-capped. An instance
// that trapped, panicked past the SDK or timed out is discarded.
//
// A bad file or a duplicate key is an error naming the file and the key,
// reported by Plugins and logged; the other plugins keep working. The
// directory is polled for added, changed and removed files; Reload rescans
// at once. A changed file is swapped in only when it loads and registers
// cleanly; calls in flight finish on the version they started on.
//
// The package imports no sibling under core/ except webhook: the wiring
// package adapts Countdown and Callback to the registries through Sink.
package plugin
