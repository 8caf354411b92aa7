/*
 * whisperer.h — Whisperer plugin ABI v1 for C (see sdk/ABI.md).
 *
 * Build a plugin as a WASI reactor:
 *   clang --target=wasm32-wasi -mexec-model=reactor -O2 -I sdk -o plugin.wasm plugin.c
 *
 * Define the exports below with WHISPERER_EXPORT(name); the manifest, the
 * input buffer and the packed results are yours to manage (sdk/ABI.md §4).
 */
#ifndef WHISPERER_H
#define WHISPERER_H

#include <stdint.h>

#define WHISPERER_ABI_VERSION 1

/* Log levels of whisperer_log. */
#define WHISPERER_LOG_DEBUG 0
#define WHISPERER_LOG_INFO 1
#define WHISPERER_LOG_WARN 2
#define WHISPERER_LOG_ERROR 3

/* Limits the host enforces. */
#define WHISPERER_MAX_MANIFEST_BYTES (64 * 1024)
#define WHISPERER_MAX_RESULT_BYTES (64 * 1024)
#define WHISPERER_MAX_KEY_BYTES 200
#define WHISPERER_MAX_TRANSFORM_BYTES (1024 * 1024) /* a transform result document */

/* Results of whisperer_filter; anything else is an error. */
#define WHISPERER_FILTER_SKIP 0
#define WHISPERER_FILTER_DELIVER 1

/*
 * The member index (sdk/ABI.md §6) after a filter's or transform's input:
 * the top-level members of the kwargs and of the payload, found by the
 * host, so a guest looks one up without walking JSON. u32 little endian;
 * a span is (offset u32, length u32) from ptr, the start of the input.
 * Each entry is the member's name as written between its quotes (escapes
 * not decoded), then its raw JSON value. Check every span against
 * kwargs_len + doc_len before reading it.
 */
#define WHISPERER_INDEX_KWARGS_COUNT 0  /* u32: entries for the kwargs */
#define WHISPERER_INDEX_PAYLOAD_COUNT 4 /* u32: entries for the payload, after them */
#define WHISPERER_INDEX_ENTRIES 8       /* the entries: name span, value span */
#define WHISPERER_INDEX_ENTRY_BYTES 16

/*
 * The callback record (sdk/ABI.md §7), what whisperer_callback_record gets
 * after the document. Offsets are from the record's start (doc + doc_len);
 * integers are little endian and unaligned: read them with memcpy (or
 * whisperer_rec_u32/u64 below). A span is (offset u32, length u32), the
 * offset relative to the start of the document. Check every span against
 * doc_len + rec_len (instance and payload: doc_len) before reading it, and
 * parse the document instead when the version is not
 * WHISPERER_RECORD_VERSION.
 */
#define WHISPERER_RECORD_VERSION 1

#define WHISPERER_REC_VERSION 0      /* u32: WHISPERER_RECORD_VERSION */
#define WHISPERER_REC_FLAGS 4        /* u32: WHISPERER_REC_DELIVERED | WHISPERER_REC_HEADERS_SET */
#define WHISPERER_REC_RETRY_COUNT 8  /* i64: retry_count */
#define WHISPERER_REC_WEBHOOK_ID 16  /* i64: webhook.id */
#define WHISPERER_REC_STATUS 24      /* i64: response.status */
#define WHISPERER_REC_DURATION 32    /* f64 bits: response.duration_ms */
#define WHISPERER_REC_SPANS 40       /* WHISPERER_SPAN_COUNT spans, in WHISPERER_SPAN_* order */
#define WHISPERER_SPAN_BYTES 8       /* size of one span */
/* u32: number of response headers (0 when response.headers is null). */
#define WHISPERER_REC_HEADER_COUNT 112 /* WHISPERER_REC_SPANS + WHISPERER_SPAN_COUNT * WHISPERER_SPAN_BYTES */
/* Header table: count entries of (name span, value span), names in
 * ascending byte order. Strings decoded from JSON follow it. */
#define WHISPERER_REC_HEADERS 116    /* WHISPERER_REC_HEADER_COUNT + 4 */

/* Bits of WHISPERER_REC_FLAGS. */
#define WHISPERER_REC_DELIVERED 1   /* delivered */
#define WHISPERER_REC_HEADERS_SET 2 /* response.headers is an object; clear: null */

/* Spans from WHISPERER_REC_SPANS, in this order. String spans point into
 * the document (JSON form needed no escaping) or after the header table
 * (the decoded UTF-8 value); INSTANCE and PAYLOAD span raw JSON values in
 * the document. */
#define WHISPERER_SPAN_EVENT_TYPE 0         /* event_type */
#define WHISPERER_SPAN_EVENT_UUID 1         /* event_uuid */
#define WHISPERER_SPAN_TARGET_URL 2         /* webhook.target_url */
#define WHISPERER_SPAN_WEBHOOK_EVENT_TYPE 3 /* webhook.event_type */
#define WHISPERER_SPAN_CALLBACK 4           /* webhook.callback */
#define WHISPERER_SPAN_BODY 5               /* response.body */
#define WHISPERER_SPAN_ERROR 6              /* response.error */
#define WHISPERER_SPAN_INSTANCE 7           /* instance, raw JSON */
#define WHISPERER_SPAN_PAYLOAD 8            /* payload, raw JSON */
#define WHISPERER_SPAN_COUNT 9

_Static_assert(WHISPERER_REC_HEADER_COUNT == WHISPERER_REC_SPANS + WHISPERER_SPAN_COUNT * WHISPERER_SPAN_BYTES,
	"record layout");
_Static_assert(WHISPERER_REC_HEADERS == WHISPERER_REC_HEADER_COUNT + 4, "record layout");

/*
 * The transform record (sdk/ABI.md §6), after the member index of
 * whisperer_transform_record's input. Spans are from the start of the
 * whole input, as in the member index.
 */
#define WHISPERER_TRANSFORM_RECORD_VERSION 1

#define WHISPERER_TREC_VERSION 0     /* u32: WHISPERER_TRANSFORM_RECORD_VERSION */
#define WHISPERER_TREC_FLAGS 4       /* u32: 0 (ignore unknown bits) */
#define WHISPERER_TREC_HOOK_ID 8     /* i64: hook_id */
#define WHISPERER_TREC_RETRY_COUNT 16 /* i64: retry_count */
#define WHISPERER_TREC_SPANS 24      /* WHISPERER_TSPAN_COUNT spans, in WHISPERER_TSPAN_* order */
#define WHISPERER_TREC_DATA 64       /* string data, to the end of the record */

/* Spans from WHISPERER_TREC_SPANS, in this order. String spans point into
 * the document (JSON form needed no escaping) or into the string data (the
 * decoded UTF-8 value); HEADERS and PAYLOAD span raw JSON values in the
 * document. */
#define WHISPERER_TSPAN_EVENT_TYPE 0 /* event_type */
#define WHISPERER_TSPAN_UUID 1       /* uuid */
#define WHISPERER_TSPAN_URL 2        /* url */
#define WHISPERER_TSPAN_HEADERS 3    /* headers, raw JSON object */
#define WHISPERER_TSPAN_PAYLOAD 4    /* payload, raw JSON */
#define WHISPERER_TSPAN_COUNT 5

_Static_assert(WHISPERER_TREC_DATA == WHISPERER_TREC_SPANS + WHISPERER_TSPAN_COUNT * WHISPERER_SPAN_BYTES,
	"transform record layout");

/* whisperer.log: write msg[0..len) to the server's structured log. The last
 * error-level message of a failed call is attached to the error reported. */
__attribute__((import_module("whisperer"), import_name("log")))
void whisperer_log(int32_t level, const char *msg, int32_t len);

/* whisperer.log_enabled (optional import): 1 if the server would log a
 * message of level from this plugin now, else 0 (error is always 1). Ask on
 * every call, do not cache: the level can change on a reload. A module that
 * calls it imports it, and servers older than this import refuse it. */
__attribute__((import_module("whisperer"), import_name("log_enabled")))
int32_t whisperer_log_enabled(int32_t level);

/* Export a function under the ABI name. */
#define WHISPERER_EXPORT(name) __attribute__((export_name(#name))) 

/* Pack an output document as ptr<<32|len. */
static inline int64_t whisperer_pack(const void *ptr, uint32_t len) {
	return (int64_t)(((uint64_t)(uintptr_t)ptr << 32) | (uint64_t)len);
}

/* Read a little-endian integer of the callback record at rec + off. */
static inline uint32_t whisperer_rec_u32(const char *rec, uint32_t off) {
	uint32_t v;
	__builtin_memcpy(&v, rec + off, sizeof v);
	return v;
}

static inline uint64_t whisperer_rec_u64(const char *rec, uint32_t off) {
	uint64_t v;
	__builtin_memcpy(&v, rec + off, sizeof v);
	return v;
}

/* The exports a plugin defines (sdk/ABI.md §2). */
void whisperer_abi_v1(void);
int32_t whisperer_alloc(int32_t size);
int64_t whisperer_manifest(void);
int64_t whisperer_countdown(int32_t idx, int32_t retry_count, const char *kwargs, int32_t kwargs_len);
int64_t whisperer_validate(int32_t idx, const char *kwargs, int32_t kwargs_len);
int32_t whisperer_callback(int32_t idx, const char *doc, int32_t doc_len);
/* Optional: if exported, called instead of whisperer_callback with the
 * document at doc[0..doc_len) and the callback record at
 * doc[doc_len..doc_len+rec_len). whisperer_callback is still required. */
int32_t whisperer_callback_record(int32_t idx, const char *doc, int32_t doc_len, int32_t rec_len);

/* Optional, when the manifest lists "filters": kwargs at in[0..kwargs_len),
 * the event document {"event_type": …, "payload": …} after them, then the
 * member index. Returns WHISPERER_FILTER_DELIVER or WHISPERER_FILTER_SKIP;
 * anything else is an error (the server then delivers). */
int32_t whisperer_filter(int32_t idx, const char *in, int32_t kwargs_len, int32_t event_len, int32_t index_len);
/* Optional, when a filter entry has "validator": true; as whisperer_validate. */
int64_t whisperer_filter_validate(int32_t idx, const char *kwargs, int32_t kwargs_len);
/* Optional, when the manifest lists "transforms": kwargs, the transform
 * document, the request body (raw bytes) and the member index, one after
 * the other from in. Returns a packed result document
 * {"body": …, "headers": {…}, "cancel": false}, 0 to keep the request as
 * it is, or a negative value on error (the attempt fails). */
int64_t whisperer_transform(int32_t idx, const char *in, int32_t kwargs_len, int32_t doc_len, int32_t body_len,
	int32_t index_len);
/* Optional: if exported, called instead of whisperer_transform with the
 * same input followed by the transform record (rec_len bytes after the
 * member index). whisperer_transform is still required: the host calls it
 * when the input and the record together would pass the input limit. */
int64_t whisperer_transform_record(int32_t idx, const char *in, int32_t kwargs_len, int32_t doc_len,
	int32_t body_len, int32_t index_len, int32_t rec_len);
/* Optional, when a transform entry has "validator": true; as whisperer_validate. */
int64_t whisperer_transform_validate(int32_t idx, const char *kwargs, int32_t kwargs_len);

#endif /* WHISPERER_H */
