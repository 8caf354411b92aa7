// Package console is Whisperer's web console, served by `whisperer serve`
// at "/" on the API's address (docs/CONSOLE.md): server-rendered
// html/template pages plus a vendored htmx (assets/README.md), all
// embedded in the binary.
//
// Sign-in exchanges an API token for a server-side session (the store's
// console_sessions table, keyed by the SHA-256 of the id the cookie
// carries); a session ends at sign-out, at expiry (Config.SessionTTL) or
// when its token is revoked. Every state change needs the session's
// synchronizer token and passes net/http's cross-origin protection
// (Sec-Fetch-Site, Origin). Every response carries a strict
// Content-Security-Policy (scripts and styles from 'self' only, no
// framing).
//
// Reads use the store's paged, indexed list queries, the ones the API's
// lists use, with the same scope: an admin sees every user's rows (or one
// user's, picked in the page header), anyone else their own, and another
// user's hook or event is a 404. Writes (enable/disable a hook, redeliver
// an event) are not reimplemented: they are requests to the REST API,
// served in-process for the signed-in user through Deps.API
// (api.Server.ServeAs), so validation and authorization are the API's.
//
// The tenant portal (portal.go) serves the same pages to a session made
// from a one-time code (the API's POST portal/sessions/), limited to one
// user and its capabilities and framable by console.frame_ancestors. The
// hook form (form.go) and its retry-schedule preview (preview.go), the
// admin pages (admin.go) and the overview's rollup charts (overview.go)
// complete it.
//
// The package imports only core/webhook and libraries; core/app wires it.
package console
