// Package transform holds the payload transformations hooks may name
// ("transform": {"name": ..., "kwargs": ...}): plugin functions that reshape
// an attempt's request before it is signed. Plugins register them.
package transform

import (
	"github.com/whisperer/whisperer/core/internal/registry"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// Registry maps transform names to functions. The zero value is empty and
// ready; it is safe for concurrent use.
type Registry struct {
	registry.Registry[webhook.Transform]
}
