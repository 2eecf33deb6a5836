/* fuzz_npy.c: the .npy reader: the header alone, then the whole file as
 * the tensor its header announces (when under 1 MiB) and as an f32[2,3]
 * and an i64[4] input.  An error must come with a message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fuzz.h"
#include "kiln.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = fuzz_write("x.npy", data, size);
	char msg[512] = "";
	struct kiln_npy_info info;
	kiln_status s = kiln_npy_info(path, &info, msg, sizeof msg);
	fuzz_said(s, msg);
	if (s == KILN_OK) {
		size_t n = kiln_dtype_size(info.dtype);
		for (int i = 0; i < info.rank && n <= 1 << 20; i++)
			n *= info.dim[i] > 0 ? (size_t)info.dim[i] : 0;
		if (n <= 1 << 20) {
			void *buf = malloc(n ? n : 1);
			msg[0] = 0;
			fuzz_said(kiln_npy_load(path, "x", info.dtype,
			                        info.rank, info.dim, buf, msg,
			                        sizeof msg), msg);
			free(buf);
		}
	}
	float f[6];
	msg[0] = 0;
	fuzz_said(kiln_npy_load(path, "x", KILN_F32, 2, (int64_t[]){2, 3}, f,
	                        msg, sizeof msg), msg);
	int64_t l[4];
	msg[0] = 0;
	fuzz_said(kiln_npy_load(path, "n", KILN_I64, 1, (int64_t[]){4}, l,
	                        msg, sizeof msg), msg);
	return 0;
}
