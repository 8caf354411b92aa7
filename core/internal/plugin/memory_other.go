//go:build !(linux || darwin)

package plugin

import "github.com/tetratelabs/wazero/experimental"

// memoryAllocator nil keeps wazero's Go-heap memories on other systems.
var memoryAllocator experimental.MemoryAllocator
