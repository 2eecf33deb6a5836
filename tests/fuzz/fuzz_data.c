/* fuzz_data.c: a trainer's --data reader (runtime/dataset.c), for a
 * classifier of 2x2 images into 3 classes.  Each input is read five ways,
 * each in its own directory: as train.csv; as the IDX images with valid
 * labels and as the IDX labels with valid images (both through zlib,
 * which also takes gzip); as x.npy with a valid y.npy and as y.npy with a
 * valid x.npy.  Every failure must have a message; data that loads must
 * hold labels below 3.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "fuzz.h"
#include "kiln.h"

static const struct kiln_tensor_desc inputs[] = {{"x", KILN_F32, 3, {8, 2, 2}}};
static const struct kiln_tensor_desc labels[] = {{"y", KILN_I64, 1, {8}}};
static const struct kiln_train_desc trainer = {
	.ninputs = 1, .nlabels = 1, .inputs = inputs, .labels = labels,
	.pred = {"pred", KILN_F32, 2, {8, 3}}, .classify = 1,
};

/* Three valid samples in each format, big-endian IDX headers. */
static const uint8_t idx_images[] = {
	0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2,
	0, 64, 128, 255, 1, 2, 3, 4, 9, 8, 7, 6,
};
static const uint8_t idx_labels[] = {0, 0, 8, 1, 0, 0, 0, 3, 0, 2, 1};

static void
load(const char *dir, const char *file, const uint8_t *d, size_t n)
{
	char name[64], msg[512] = "";
	snprintf(name, sizeof name, "%s/%s", dir, file);
	char *path = strdup(fuzz_write(name, d, n));
	struct kiln_dataset ds;
	kiln_status s = kiln_dataset_load(&ds, path, &trainer, msg, sizeof msg);
	fuzz_said(s, msg);
	const int64_t *y = ds.train.col[1];
	for (int64_t i = 0; s == KILN_OK && i < ds.train.n; i++)
		if (y[i] < 0 || y[i] >= 3) {
			fprintf(stderr, "fuzz_data: label %lld loaded\n",
			        (long long)y[i]);
			abort();
		}
	if (s == KILN_OK)
		kiln_dataset_free(&ds);
	free(path);
}

/* The valid companion file of each directory. */
static void
setup(void)
{
	char msg[256];
	float x[12] = {0};
	int64_t y[3] = {0, 2, 1};
	const char *dirs[] = {"csv", "images", "labels", "x", "y"};
	for (int i = 0; i < 5; i++)
		mkdir(fuzz_path(dirs[i]), 0700);
	fuzz_write("images/train-labels-idx1-ubyte", idx_labels,
	           sizeof idx_labels);
	fuzz_write("labels/train-images-idx3-ubyte", idx_images,
	           sizeof idx_images);
	if (kiln_npy_save(fuzz_path("x/y.npy"), KILN_I64, 1, (int64_t[]){3},
	                  y, msg, sizeof msg) ||
	    kiln_npy_save(fuzz_path("y/x.npy"), KILN_F32, 3,
	                  (int64_t[]){3, 2, 2}, x, msg, sizeof msg)) {
		fprintf(stderr, "fuzz_data: %s\n", msg);
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	if (!ready++)
		setup();
	load("csv", "train.csv", data, size);
	load("images", "train-images-idx3-ubyte", data, size);
	load("labels", "train-labels-idx1-ubyte", data, size);
	load("x", "x.npy", data, size);
	load("y", "y.npy", data, size);
	return 0;
}
