// Package api is Whisperer's REST API: dj-whisperer's hooks, hook_events
// and event_types endpoints (the compatibility contract: a dj-whisperer
// client works unchanged), the publish endpoint, redelivery, and the
// health probes, on gorilla/mux.
//
// Handlers return errors; one adapter (writeError) turns every error into a
// status and a body in Django REST framework's shapes: 400
// {"field": ["message"]}, and {"detail": "..."} for 401, 403, 404, 405,
// 409, 413, 415, 503 and 500. Nothing a client sends produces a 500: input
// is checked before it reaches the store (ids, uuids, query values, bodies,
// header values), so a 500 always means a bug or a broken database.
//
// The package imports only core/internal/webhook and libraries. What it needs from
// the store, the countdown registry, the callback registry and the
// delivery engine it declares as small interfaces and functions in Deps;
// core/app wires the real ones in.
//
// Choices where DRF leaves room, documented in docs/API.md:
//   - Every list, including event_types, has the CursorPagination shape
//     {"next", "previous", "results"}; page_size defaults to 100, max 1000.
//   - Event uuids are written as 32 hex digits, the form of the delivered
//     body's event.uuid and the webhook-id header; the dashed form is
//     accepted everywhere a uuid is read.
//   - Times are RFC 3339 in UTC with microseconds: 2024-05-01T12:00:00.000000Z.
//   - A replayed publish (same Idempotency-Key) answers 200 with the first
//     publish's events and the header Idempotent-Replayed: true.
package api
