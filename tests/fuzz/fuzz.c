/* fuzz.c: the fuzz targets' temporary files. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "fuzz.h"

static char dir[64];

static void
remove_dir(void)
{
	char cmd[96];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz: cannot remove %s\n", dir);
}

const char *
fuzz_path(const char *name)
{
	static char path[256];
	if (!dir[0]) {
		const char *t = getenv("TMPDIR");
		snprintf(dir, sizeof dir, "%s/kiln-fuzz-XXXXXX",
		         t && *t && strlen(t) < 32 ? t : "/tmp");
		if (!mkdtemp(dir)) {
			perror("fuzz: mkdtemp");
			abort();
		}
		atexit(remove_dir);
	}
	snprintf(path, sizeof path, "%s/%s", dir, name);
	return path;
}

const char *
fuzz_write(const char *name, const uint8_t *d, size_t n)
{
	const char *path = fuzz_path(name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(d, 1, n, f) != n || fclose(f) != 0) {
		perror(path);
		abort();
	}
	return path;
}

void
fuzz_said(int s, const char *msg)
{
	if (s != 0 && !msg[0]) {
		fprintf(stderr, "fuzz: status %d without a message\n", s);
		abort();
	}
}

char *
fuzz_text(const uint8_t *d, size_t n)
{
	if (memchr(d, 0, n))
		return NULL;
	char *s = malloc(n + 1);
	memcpy(s, d, n);
	s[n] = 0;
	return s;
}
