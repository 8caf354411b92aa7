// Package abi holds the wire constants of the Whisperer plugin ABI: export
// and import names, the version, log levels and size limits. It has no
// behaviour so that the host (core/internal/plugin) and the Go SDK (sdk) cannot drift
// apart. sdk/ABI.md is the specification these constants implement.
package abi

import "encoding/json"

// Version is the ABI version this package describes. A module speaks it when
// it exports the function named ExportVersion.
const Version = 1

// Exports a plugin module provides. Signatures use WebAssembly value types.
const (
	// ExportMemory is the module's linear memory.
	ExportMemory = "memory"
	// ExportVersion is the version marker: () -> ().
	ExportVersion = "whisperer_abi_v1"
	// ExportInitialize is the WASI reactor initializer, called once after
	// instantiation when present: () -> ().
	ExportInitialize = "_initialize"
	// ExportStart marks a WASI command; plugins must not export it.
	ExportStart = "_start"
	// ExportAlloc returns a buffer of at least size bytes for host input:
	// (size i32) -> (ptr i32).
	ExportAlloc = "whisperer_alloc"
	// ExportManifest returns the manifest JSON: () -> (packed i64).
	ExportManifest = "whisperer_manifest"
	// ExportCountdown returns seconds to wait, negative on error:
	// (idx i32, retry_count i32, kwargs_ptr i32, kwargs_len i32) -> (i64).
	ExportCountdown = "whisperer_countdown"
	// ExportValidate returns 0 when kwargs are valid as given, a packed
	// result document, or a negative value on error:
	// (idx i32, kwargs_ptr i32, kwargs_len i32) -> (i64).
	ExportValidate = "whisperer_validate"
	// ExportCallback returns 0 on success, non-zero on failure:
	// (idx i32, doc_ptr i32, doc_len i32) -> (i32).
	ExportCallback = "whisperer_callback"
	// ExportCallbackRecord is the optional callback entry that also takes
	// the callback record (the document's fields at fixed offsets, see
	// Record*): (idx i32, ptr i32, doc_len i32, rec_len i32) -> (i32). The
	// document is at ptr, the record right after it. A module that exports
	// it is called through it instead of ExportCallback.
	ExportCallbackRecord = "whisperer_callback_record"
	// ExportFilter decides whether an event goes to a hook: (idx i32,
	// ptr i32, kwargs_len i32, event_len i32, index_len i32) -> (i32). The
	// kwargs are at ptr, the event document after them, the member index
	// (Index*) after that. 1 delivers, 0 skips, anything else is an error.
	ExportFilter = "whisperer_filter"
	// ExportFilterValidate checks a filter's kwargs, like ExportValidate:
	// (idx i32, kwargs_ptr i32, kwargs_len i32) -> (i64).
	ExportFilterValidate = "whisperer_filter_validate"
	// ExportTransform reshapes one attempt's request: (idx i32, ptr i32,
	// kwargs_len i32, doc_len i32, body_len i32, index_len i32) -> (i64).
	// The kwargs are at ptr, the transform document after them, the
	// request body (raw bytes) after that, then the member index. It
	// returns a packed result document (0 keeps the request as it is) or a
	// negative value on error.
	ExportTransform = "whisperer_transform"
	// ExportTransformRecord is the optional transform entry that also takes
	// the transform record (the document's fields at fixed offsets, see
	// TRec*): (idx i32, ptr i32, kwargs_len i32, doc_len i32, body_len i32,
	// index_len i32, rec_len i32) -> (i64). The input is ExportTransform's
	// with the record after the member index. A module that exports it is
	// called through it instead of ExportTransform.
	ExportTransformRecord = "whisperer_transform_record"
	// ExportTransformValidate checks a transform's kwargs, like
	// ExportValidate: (idx i32, kwargs_ptr i32, kwargs_len i32) -> (i64).
	ExportTransformValidate = "whisperer_transform_validate"
)

// The member index that follows a filter's or transform's input: the
// top-level members of the kwargs and of the payload, found by the host,
// so that a guest looks a member up without walking JSON byte by byte
// (each step of a guest loop costs ~80 ns under the host's deadline
// checks). All integers are u32, little endian. A span is (offset u32,
// length u32) from ptr, the start of the whole input.
const (
	// IndexKwargsCount and IndexPayloadCount are how many entries follow
	// for the kwargs, then for the payload (0 when it is not an object).
	IndexKwargsCount  = 0
	IndexPayloadCount = 4
	// IndexEntries is where the entries start: the kwargs' entries, then
	// the payload's, each IndexEntryBytes: the member's name as written
	// between its quotes (escapes not decoded), then its raw JSON value.
	IndexEntries    = 8
	IndexEntryBytes = 16
)

// Results of ExportFilter.
const (
	FilterSkip    = 0
	FilterDeliver = 1
)

// The callback record: the callback document's fields at fixed offsets, so
// a guest reads them without parsing JSON (parsing costs tens of
// microseconds inside wasm). All integers are little endian. A span is
// (offset u32, length u32) relative to the start of the document: it points
// into the document (instance, payload, strings that needed no escaping) or
// into the record after the header table (strings as decoded from JSON).
const (
	// RecordVersion is the record layout the host writes at RecVersion.
	RecordVersion = 1

	RecVersion    = 0  // u32: RecordVersion
	RecFlags      = 4  // u32: RecDelivered | RecHeadersSet
	RecRetryCount = 8  // i64
	RecWebhookID  = 16 // i64
	RecStatus     = 24 // i64: response.status
	RecDuration   = 32 // f64 bits: response.duration_ms
	RecSpans      = 40 // SpanCount spans, in Span* order
	// RecHeaderCount is a u32: how many response headers follow.
	RecHeaderCount = RecSpans + SpanCount*SpanBytes
	// RecHeaders is where the header table starts: RecHeaderCount entries
	// of (name span, value span), names in ascending byte order.
	RecHeaders = RecHeaderCount + 4
	// SpanBytes is the size of one span.
	SpanBytes = 8

	// RecDelivered is the RecFlags bit of "delivered".
	RecDelivered = 1
	// RecHeadersSet is the RecFlags bit set when response.headers is an
	// object, clear when it is null (no response arrived).
	RecHeadersSet = 2
)

// Spans of the callback record, in order from RecSpans. Instance and
// Payload span the raw JSON values in the document.
const (
	SpanEventType = iota
	SpanEventUUID
	SpanTargetURL
	SpanWebhookEventType
	SpanCallback
	SpanBody
	SpanError
	SpanInstance
	SpanPayload
	SpanCount
)

// The transform record: the transform document's fields at fixed offsets,
// after the member index of ExportTransformRecord's input. Integers are
// little endian. A span is (offset u32, length u32) from ptr, the start of
// the whole input, as in the member index: headers and payload span their
// raw JSON values in the document; a string spans its content in the
// document when it needed no escaping, else its decoded value in the
// record's string data, from TRecData to the end.
const (
	// TransformRecordVersion is the layout the host writes at TRecVersion.
	TransformRecordVersion = 1

	TRecVersion    = 0  // u32: TransformRecordVersion
	TRecFlags      = 4  // u32: 0 (no flags yet)
	TRecHookID     = 8  // i64
	TRecRetryCount = 16 // i64
	TRecSpans      = 24 // TSpanCount spans, in TSpan* order
	// TRecData is where the string data starts.
	TRecData = TRecSpans + TSpanCount*SpanBytes
)

// Spans of the transform record, in order from TRecSpans.
const (
	TSpanEventType = iota
	TSpanUUID
	TSpanURL
	TSpanHeaders
	TSpanPayload
	TSpanCount
)

// Imports the host provides besides WASI preview 1.
const (
	// ImportModule is the module name of the host functions.
	ImportModule = "whisperer"
	// ImportLog writes one log message: (level i32, ptr i32, len i32) -> ().
	ImportLog = "log"
	// ImportLogEnabled reports whether the host would emit a message of a
	// level for this plugin, 1 or 0: (level i32) -> (i32). Optional: a
	// module may import it or not. Error level is always 1 (the host keeps
	// the last error message of a failed call for its report).
	ImportLogEnabled = "log_enabled"
	// WASIModule is the WASI preview 1 module name.
	WASIModule = "wasi_snapshot_preview1"
)

// Log levels of ImportLog. Unknown levels are logged as LevelInfo.
const (
	LevelDebug int32 = 0
	LevelInfo  int32 = 1
	LevelWarn  int32 = 2
	LevelError int32 = 3
)

// Limits the host enforces.
const (
	// MaxManifestBytes bounds the manifest document.
	MaxManifestBytes = 64 << 10
	// MaxResultBytes bounds a validate result document.
	MaxResultBytes = 64 << 10
	// MaxTransformBytes bounds a transform result document: the new body
	// and headers together.
	MaxTransformBytes = 1 << 20
	// MaxKeyBytes bounds a countdown key or callback name.
	MaxKeyBytes = 200
	// MaxEntries bounds the countdowns, callbacks, filters and transforms
	// of one module together.
	MaxEntries = 256
	// MaxLogMessageBytes bounds one log message or output line; the rest is cut.
	MaxLogMessageBytes = 4 << 10
	// MaxLogBytesPerCall bounds what one call may log (log import, stdout and
	// stderr together); the rest is dropped and counted.
	MaxLogBytesPerCall = 64 << 10
)

// Manifest is the JSON document ExportManifest returns. Unknown fields are
// ignored so later minor revisions can add some.
type Manifest struct {
	// ABI is the ABI version the module was written for; 0 means Version.
	ABI int `json:"abi,omitempty"`
	// Name is an optional human-readable plugin name.
	Name string `json:"name,omitempty"`
	// Countdowns are countdown keys; index i is served by ExportCountdown
	// and ExportValidate with idx = i.
	Countdowns []string `json:"countdowns"`
	// Callbacks are callback names; index i is served by ExportCallback.
	Callbacks []string `json:"callbacks"`
	// Filters are plugin filters; index i is served by ExportFilter (and
	// ExportFilterValidate when Entry.Validator). Optional: older modules
	// omit it.
	Filters []Entry `json:"filters,omitempty"`
	// Transforms are transforms; index i is served by ExportTransform (and
	// ExportTransformValidate when Entry.Validator).
	Transforms []Entry `json:"transforms,omitempty"`
}

// Entry is one filter or transform of a manifest: {"name": "x",
// "validator": true}. A plain JSON string is an entry without a validator.
type Entry struct {
	Name string `json:"name"`
	// Validator: the module validates this entry's kwargs; without one
	// the server accepts any JSON object.
	Validator bool `json:"validator,omitempty"`
}

// UnmarshalJSON accepts an entry object or a plain name.
func (e *Entry) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		*e = Entry{}
		return json.Unmarshal(b, &e.Name)
	}
	type plain Entry
	return json.Unmarshal(b, (*plain)(e))
}
