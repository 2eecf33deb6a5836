/* embed_main.c: a program that embeds a model compiled with
 * `kiln build --emit=c`.  It fills an input, runs the model with its own
 * workspace and with the static one, checks the two agree and the
 * probabilities sum to 1, and saves the input as .npy (argv[1]) and the
 * raw output (argv[2]) for the test to compare with the executable. */
#include <math.h>
#include <stdio.h>
#include "cnn.h"

static float image[1 * 1 * 28 * 28], probs[10], again[10];
static _Alignas(KILN_ALIGN) unsigned char ws[CNN_WORKSPACE_BYTES];

int
main(int argc, char **argv)
{
	char msg[256];
	const int64_t dim[4] = {1, 1, 28, 28};
	if (argc != 3)
		return 1;
	for (int i = 0; i < 784; i++)
		image[i] = (float)(i % 17) / 17.0f;
	struct cnn_inputs in = {image};
	struct cnn_outputs out = {probs};
	if (cnn_run(&in, &out, ws) != KILN_OK)
		return 1;
	out.probs = again;
	if (cnn_run(&in, &out, NULL) != KILN_OK)
		return 1;
	double sum = 0;
	for (int i = 0; i < 10; i++) {
		if (probs[i] != again[i])
			return 2;
		printf("%.6f\n", probs[i]);
		sum += probs[i];
	}
	printf("sum %.4f\n", sum);
	if (kiln_npy_save(argv[1], KILN_F32, 4, dim, image, msg,
	                  sizeof msg) != KILN_OK) {
		fprintf(stderr, "%s\n", msg);
		return 1;
	}
	FILE *f = fopen(argv[2], "wb");
	if (!f || fwrite(probs, sizeof probs, 1, f) != 1 || fclose(f) != 0)
		return 1;
	return fabs(sum - 1) < 1e-5 ? 0 : 3;
}
