package api

import (
	"encoding/json"
	"time"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// decodeRotate reads "rotate": true, which asks an update to keep the
// replaced secret_key signing deliveries for the configured overlap, so
// receivers can switch secrets without rejecting anything.
func decodeRotate(raw json.RawMessage, in *hookInput, m mode, errs *webhook.ValidationError) {
	var msg string
	if in.rotate, msg = decodeBool(raw); msg != "" {
		errs.Add("rotate", msg)
		return
	}
	switch {
	case !in.rotate:
	case m == modeCreate:
		errs.Add("rotate", "A new hook has no secret to rotate; send rotate with an update.")
	case !in.has["secret_key"]:
		errs.Add("rotate", "Send the new secret_key with rotate.")
	}
}

// rotateSecret records the secret an update replaced: with rotate it keeps
// signing until until; without, a replaced secret (and any earlier
// rotation's) stops at once, as when a leaked secret is changed.
func rotateSecret(h *webhook.Webhook, old string, in *hookInput, until time.Time) {
	switch {
	case h.SecretKey == old:
	case in.rotate && old != "":
		h.PreviousSecretKey, h.PreviousSecretUntil = old, &until
	default:
		h.PreviousSecretKey, h.PreviousSecretUntil = "", nil
	}
}
