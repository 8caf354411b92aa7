// Package callback holds the post-delivery callbacks hooks may name (what
// dj-whisperer's callback import string named). Plugins register them.
package callback

import (
	"context"
	"fmt"

	"github.com/whisperer/whisperer/core/internal/registry"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// Registry maps callback names to functions. The zero value is empty and
// ready; it is safe for concurrent use.
type Registry struct {
	registry.Registry[webhook.CallbackFunc]
}

// Call runs the callback registered under name with doc.
func (r *Registry) Call(ctx context.Context, name string, doc *webhook.CallbackDoc) error {
	f, ok := r.Lookup(name)
	if !ok {
		return fmt.Errorf("callback %q is not registered", name)
	}
	return f(ctx, doc)
}
