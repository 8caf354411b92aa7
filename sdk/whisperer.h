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

/* The exports a plugin defines (sdk/ABI.md §2). */
void whisperer_abi_v1(void);
int32_t whisperer_alloc(int32_t size);
int64_t whisperer_manifest(void);
int64_t whisperer_countdown(int32_t idx, int32_t retry_count, const char *kwargs, int32_t kwargs_len);
int64_t whisperer_validate(int32_t idx, const char *kwargs, int32_t kwargs_len);
int32_t whisperer_callback(int32_t idx, const char *doc, int32_t doc_len);

#endif /* WHISPERER_H */
