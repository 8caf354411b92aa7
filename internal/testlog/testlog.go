// Package testlog captures what a component under test writes (its slog
// output, a child process's stdout) while its goroutines are still
// writing, so a test can read it without a data race.
package testlog

import (
	"bytes"
	"sync"
)

// Buffer is a bytes.Buffer safe for one writer goroutine per Write call
// and concurrent readers. The zero value is ready to use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Reset drops everything written so far, so a test can read one step's
// output at a time.
func (b *Buffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b.Reset()
}
