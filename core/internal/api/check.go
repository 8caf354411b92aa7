package api

import (
	"encoding/json"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// CheckHookDocument applies to doc, a hook as a JSON object, every rule of
// POST /whisperer/hooks/ that needs no lookup (shapes, bounds, headers,
// config.auth, credentials in target_url) and returns the hook it
// describes. Whether its event type, callback and countdown are known is
// for the caller, who has the registries. Importers use it so that what
// they store is what the API would have accepted.
func CheckHookDocument(doc map[string]json.RawMessage) (webhook.Webhook, *webhook.ValidationError) {
	in, errs := decodeHook(doc, modeCreate)
	w := webhook.Webhook{IsActive: true}
	in.apply(&w)
	return w, errs
}
