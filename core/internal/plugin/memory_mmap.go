//go:build linux || darwin

package plugin

import (
	"syscall"

	"github.com/tetratelabs/wazero/experimental"
)

// Linear memories live outside the Go heap: each instance reserves its
// maximum (at most memory_limit_mb) as address space, memory.grow makes
// pages accessible in place, and closing the instance unmaps them at once.
// On the Go heap, a discarded instance's memory (and every copy made while
// it grew) stayed until the collector and the scavenger returned it: 80
// calls of a memory bomb took the host past 1 GB with 4 calls in flight.
var memoryAllocator experimental.MemoryAllocator = experimental.MemoryAllocatorFunc(mmapAllocate)

type mmapMemory struct {
	buf       []byte // the whole reservation
	committed int    // bytes made readable and writable
}

func mmapAllocate(_, max uint64) experimental.LinearMemory {
	size := roundPage(max)
	if size == 0 {
		size = syscall.Getpagesize()
	}
	buf, err := syscall.Mmap(-1, 0, size, syscall.PROT_NONE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return &heapMemory{} // no address space left: fall back to the Go heap
	}
	return &mmapMemory{buf: buf}
}

func roundPage(n uint64) int {
	p := uint64(syscall.Getpagesize())
	return int((n + p - 1) / p * p)
}

// Reallocate makes the first size bytes usable; nil refuses the growth.
func (m *mmapMemory) Reallocate(size uint64) []byte {
	if size > uint64(len(m.buf)) {
		return nil
	}
	if want := roundPage(size); want > m.committed {
		if err := syscall.Mprotect(m.buf[m.committed:want], syscall.PROT_READ|syscall.PROT_WRITE); err != nil {
			return nil
		}
		m.committed = want
	}
	return m.buf[:size:size]
}

func (m *mmapMemory) Free() {
	if m.buf != nil {
		_ = syscall.Munmap(m.buf)
		m.buf = nil
	}
}

// heapMemory is wazero's own strategy, for when mmap fails.
type heapMemory struct{ buf []byte }

func (m *heapMemory) Reallocate(size uint64) []byte {
	if n := uint64(len(m.buf)); size > n {
		m.buf = append(m.buf, make([]byte, size-n)...)
	}
	return m.buf[:size]
}

func (m *heapMemory) Free() { m.buf = nil }
