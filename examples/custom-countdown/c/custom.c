/*
 * custom.c: the documented "custom" retry countdown as a Whisperer ABI v1
 * plugin in C (sdk/ABI.md). Key "custom"; kwarg "factor", an integer >= 1;
 * waits 2*factor*retry_count seconds when retry_count is even, else
 * factor*retry_count.
 *
 * Build (Debian: apt-get install clang lld wasi-libc libclang-rt-dev-wasm32),
 * from the repository root:
 *
 *   clang --target=wasm32-wasi -mexec-model=reactor -O2 -s -I sdk \
 *     -o examples/custom-countdown/c/custom.wasm examples/custom-countdown/c/custom.c
 *
 * Like DRF's IntegerField, factor may be 5, 5.0 or "5"; kwargs are stored as
 * given. Factors above 2^30 saturate so the result cannot overflow.
 */
#include <stdlib.h>
#include <string.h>

#include "whisperer.h"

#define LOG_ERROR(msg) whisperer_log(WHISPERER_LOG_ERROR, msg, (int32_t)(sizeof msg - 1))
#define PACK(doc) whisperer_pack(doc, (uint32_t)(sizeof doc - 1))

static const char manifest[] =
	"{\"abi\":1,\"name\":\"custom-countdown-c\",\"countdowns\":[\"custom\"],\"callbacks\":[]}";
static const char err_required[] = "{\"errors\":{\"factor\":[\"This field is required.\"]}}";
static const char err_invalid[] = "{\"errors\":{\"factor\":[\"A valid integer is required.\"]}}";
static const char err_min[] =
	"{\"errors\":{\"factor\":[\"Ensure this value is greater than or equal to 1.\"]}}";
static const char err_object[] =
	"{\"errors\":{\"non_field_errors\":[\"Invalid data. Expected a dictionary.\"]}}";

/* The input buffer (sdk/ABI.md §4): the host reuses it until it asks for a
 * bigger one, so the previous one can be freed then. */
static char *input;

WHISPERER_EXPORT(whisperer_abi_v1) void whisperer_abi_v1(void) {}

WHISPERER_EXPORT(whisperer_alloc) int32_t whisperer_alloc(int32_t size) {
	if (size < 0)
		return 0;
	free(input);
	input = malloc((size_t)size + 1);
	return (int32_t)(uintptr_t)input;
}

WHISPERER_EXPORT(whisperer_manifest) int64_t whisperer_manifest(void) { return PACK(manifest); }

enum status { OK, MISSING, INVALID, NOT_OBJECT };

static const char *skip_ws(const char *p, const char *end) {
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* parse_factor reads the "factor" kwarg of the JSON object at [p, p+n). It
 * scans for the key rather than parsing all of JSON: enough for an example. */
static enum status parse_factor(const char *p, int32_t n, long long *factor) {
	const char *end = p + n, *q = skip_ws(p, end);
	if (q == end || *q != '{')
		return NOT_OBJECT;
	for (;; q++) {
		if (end - q < 8)
			return MISSING;
		if (memcmp(q, "\"factor\"", 8) == 0)
			break;
	}
	q = skip_ws(q + 8, end);
	if (q == end || *q++ != ':')
		return INVALID;
	q = skip_ws(q, end);
	int quoted = q < end && *q == '"';
	if (quoted)
		q++;
	int neg = q < end && *q == '-';
	if (neg)
		q++;
	long long v = 0;
	const char *digits = q;
	for (; q < end && *q >= '0' && *q <= '9'; q++) {
		v = v * 10 + (*q - '0');
		if (v > (1LL << 30))
			v = 1LL << 30;
	}
	if (q == digits)
		return INVALID;
	if (q < end && *q == '.') /* 5.0 and "5.00" are integers for DRF */
		for (q++; q < end && *q == '0'; q++)
			;
	if (quoted && (q == end || *q++ != '"'))
		return INVALID;
	q = skip_ws(q, end);
	if (q < end && *q != ',' && *q != '}')
		return INVALID;
	*factor = neg ? -v : v;
	return OK;
}

WHISPERER_EXPORT(whisperer_countdown)
int64_t whisperer_countdown(int32_t idx, int32_t retry_count, const char *kwargs, int32_t n) {
	long long factor = 0;
	if (idx != 0) {
		LOG_ERROR("custom: no countdown at this index");
		return -1;
	}
	if (parse_factor(kwargs, n, &factor) != OK || factor < 1) {
		LOG_ERROR("custom: kwargs have no integer factor >= 1");
		return -1;
	}
	int64_t v = factor * (int64_t)retry_count;
	return retry_count % 2 == 0 ? 2 * v : v;
}

WHISPERER_EXPORT(whisperer_validate)
int64_t whisperer_validate(int32_t idx, const char *kwargs, int32_t n) {
	long long factor = 0;
	if (idx != 0) {
		LOG_ERROR("custom: no countdown at this index");
		return -1;
	}
	switch (parse_factor(kwargs, n, &factor)) {
	case NOT_OBJECT:
		return PACK(err_object);
	case MISSING:
		return PACK(err_required);
	case INVALID:
		return PACK(err_invalid);
	case OK:
		break;
	}
	return factor < 1 ? PACK(err_min) : 0;
}
