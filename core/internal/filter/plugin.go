package filter

import (
	"github.com/whisperer/whisperer/core/internal/registry"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// Registry maps plugin filter names to functions ({"plugin": name, ...} in
// a hook's filter). The zero value is empty and ready; it is safe for
// concurrent use.
type Registry struct {
	registry.Registry[webhook.Filter]
}
