/* util.c: names and sizes of the runtime's small enums, and two
 * helpers for the runtime's error messages.
 *
 * The dtype names ("f32", "i64", ...) are the ones the .kir text form and
 * every runtime message use, so a shape printed by the compiler and one
 * printed by a deployed executable look the same.  Out-of-range values get
 * "?" or 0 rather than crashing, since these feed error messages.
 */
#include <stdarg.h>
#include <stdio.h>

#include "kiln.h"

static const struct {
	const char *name;
	size_t size;
} dtypes[KILN_NDTYPE] = {
	[KILN_F32] = {"f32", 4},
	[KILN_F64] = {"f64", 8},
	[KILN_I64] = {"i64", 8},
	[KILN_I32] = {"i32", 4},
	[KILN_I8] = {"i8", 1},
	[KILN_U8] = {"u8", 1},
	[KILN_BOOL] = {"bool", 1},
	[KILN_F16] = {"f16", 2},
	[KILN_BF16] = {"bf16", 2},
	[KILN_I16] = {"i16", 2},
	[KILN_U16] = {"u16", 2},
	[KILN_U32] = {"u32", 4},
	[KILN_U64] = {"u64", 8},
};

static const char *const statuses[] = {
	[KILN_OK] = "ok",
	[KILN_ERR_IO] = "I/O error",
	[KILN_ERR_FORMAT] = "bad file format",
	[KILN_ERR_DTYPE] = "wrong element type",
	[KILN_ERR_SHAPE] = "wrong shape",
	[KILN_ERR_UNSUPPORTED] = "unsupported",
	[KILN_ERR_ARG] = "bad argument",
	[KILN_ERR_NOMEM] = "out of memory",
	[KILN_ERR_RANGE] = "index out of range",
	[KILN_ERR_NONFINITE] = "a NaN or infinity",
};

const char *
kiln_dtype_name(kiln_dtype t)
{
	if ((unsigned)t >= KILN_NDTYPE)
		return "?";
	return dtypes[t].name;
}

size_t
kiln_dtype_size(kiln_dtype t)
{
	if ((unsigned)t >= KILN_NDTYPE)
		return 0;
	return dtypes[t].size;
}

const char *
kiln_status_str(kiln_status s)
{
	if ((unsigned)s >= sizeof(statuses) / sizeof(statuses[0]))
		return "unknown status";
	return statuses[s];
}

const char *
kiln_type_name(char *buf, size_t len, kiln_dtype t, int rank,
               const int64_t *dim)
{
	size_t k = (size_t)snprintf(buf, len, "%s[", kiln_dtype_name(t));

	for (int i = 0; i < rank && k < len; i++)
		k += (size_t)snprintf(buf + k, len - k, "%s%lld", i ? "," : "",
		                      (long long)dim[i]);
	if (k < len)
		snprintf(buf + k, len - k, "]");
	return buf;
}

kiln_status
kiln_fail(char *msg, size_t msglen, kiln_status s, const char *path,
          const char *fmt, ...)
{
	va_list ap;
	int k = 0;

	if (!msg || msglen == 0)
		return s;
	if (path)
		k = snprintf(msg, msglen, "%s: ", path);
	if (k < 0 || (size_t)k >= msglen)
		return s;
	va_start(ap, fmt);
	vsnprintf(msg + k, msglen - (size_t)k, fmt, ap);
	va_end(ap);
	return s;
}
