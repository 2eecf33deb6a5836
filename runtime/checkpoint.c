/* checkpoint.c: a trainer's checkpoint as a safetensors file.
 *
 * A checkpoint is everything a run needs to go on exactly as if it had
 * not stopped: every state tensor (optimizer slots too) and the trainer's
 * own tensors (its counters, the data order; runtime/train.c makes the
 * list).  It is a safetensors file like the weights (safetensors.c writes
 * it, through a temporary file renamed over the old checkpoint, so a
 * crash leaves the old one or the new one whole), so Python can read it
 * and `--weights` takes it too.  Its __metadata__ says what it is:
 *   {"format":"kiln-checkpoint","model":NAME,"crc32":"xxxxxxxx"}
 * The CRC-32 (zlib's) of the tensors' data, in the list's order, catches
 * a file damaged after it was written, which the header's own checks
 * cannot see.
 */
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "kiln.h"

#define FORMAT "kiln-checkpoint"

static uint64_t
bytes(const struct kiln_state_desc *t)
{
	uint64_t n = kiln_dtype_size(t->dtype);

	for (int i = 0; i < t->rank; i++)
		n *= (uint64_t)t->dim[i];
	return n;
}

/* The CRC-32 of every tensor's data in turn, as 8 hex digits. */
static void
checksum(char out[9], const struct kiln_state_desc *s, int n,
         const void *base)
{
	uLong crc = crc32(0L, Z_NULL, 0);

	for (int i = 0; i < n; i++) {
		const unsigned char *p = (const unsigned char *)base + s[i].offset;
		uint64_t left = bytes(&s[i]);
		while (left > 0) {      /* crc32() takes at most a uInt */
			uInt k = left > 1u << 30 ? 1u << 30 : (uInt)left;
			crc = crc32(crc, p, k);
			p += k;
			left -= k;
		}
	}
	snprintf(out, 9, "%08lx", (unsigned long)(crc & 0xffffffffu));
}

/* Model names are identifiers with dots; anything else is not written
 * into the JSON as it is. */
static const char *
safe_name(const char *model)
{
	for (const char *p = model; *p; p++)
		if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
			return "?";
	return model;
}

kiln_status
kiln_checkpoint_save(const char *path, const struct kiln_state_desc *s, int n,
                     const void *base, const char *model, char *msg,
                     size_t msglen)
{
	char crc[9], meta[400];

	checksum(crc, s, n, base);
	snprintf(meta, sizeof meta, "\"format\":\"%s\",\"model\":\"%.256s\","
	         "\"crc32\":\"%s\"", FORMAT, safe_name(model), crc);
	return kiln_st_save(path, s, n, base, 1, meta, msg, msglen);
}

kiln_status
kiln_checkpoint_load(const char *path, const struct kiln_state_desc *s, int n,
                     void *base, const char *model, char *msg, size_t msglen)
{
	struct kiln_st_meta m;
	char crc[9];
	kiln_status st;

	memset(&m, 0, sizeof m);
	st = kiln_st_load(path, s, n, base, 1, &m, msg, msglen);

	/* a weights file or another model's checkpoint fails on a missing
	 * or mismatched tensor first; say what it is instead */
	if ((st == KILN_OK || *m.format) && strcmp(m.format, FORMAT))
		return kiln_fail(msg, msglen, KILN_ERR_FORMAT, path,
		                 "not a kiln checkpoint (%s%s%s)", *m.format ?
		                 "its format is '" : "no format in its metadata",
		                 m.format, !*m.format ? "" :
		                 strcmp(m.format, "kiln") ? "'" :
		                 "': a weights file, which --weights takes");
	if ((st == KILN_OK || *m.model) && strcmp(m.model, safe_name(model)))
		return kiln_fail(msg, msglen, KILN_ERR_FORMAT, path,
		                 "a checkpoint of model '%s', not of '%s'", m.model,
		                 model);
	if (st)
		return st;
	checksum(crc, s, n, base);
	if (strcmp(crc, m.crc32))
		return kiln_fail(msg, msglen, KILN_ERR_FORMAT, path,
		                 "corrupt checkpoint: the CRC-32 of its data is %s, "
		                 "its header says '%s'", crc, m.crc32);
	return KILN_OK;
}
