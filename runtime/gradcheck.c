/* gradcheck.c: the program `kiln gradcheck` builds, which checks the
 * gradients kiln's autodiff computes against finite differences.
 *
 * The compiler hands over two compiled graphs on the same inputs: loss,
 * returning the scalar L = sum_k sum(y_k * r_k) of the model's outputs y_k
 * against fixed random tensors r_k, and grad, returning L and dL/dx for
 * every float input x (the model's parameters are inputs here).  Inputs
 * are filled from a seeded generator; then for up to `samples` elements of
 * each x, the central difference (L(x + e) - L(x - e)) / 2e is compared
 * with the analytic gradient.  At a kink (relu at 0, a max with a tie) the
 * difference depends on e: an element whose differences at e and e/2
 * disagree is skipped and counted, not failed.  All arithmetic is f32, so
 * the step is large (1e-2 of max(1, |x|) by default: truncation error e^2
 * against rounding noise 1e-7 |L| / e) and errors are relative to
 * max(|g|, 5% of the tensor's largest |g|, the noise floor 1e-3 max(1,
 * |L|)), failing above 2e-2: a wrong factor or sign in a rule is far
 * above that, and the noise of small elements is not.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln.h"

static int64_t
numel(const struct kiln_tensor_desc *t)
{
	int64_t n = 1;
	for (int i = 0; i < t->rank; i++)
		n *= t->dim[i];
	return n;
}

static void *
alloc(size_t n)
{
	void *p = aligned_alloc(KILN_ALIGN, (n + KILN_ALIGN - 1) /
	                        KILN_ALIGN * KILN_ALIGN + KILN_ALIGN);
	if (!p) {
		fprintf(stderr, "gradcheck: out of memory\n");
		exit(1);
	}
	memset(p, 0, n);
	return p;
}

static float
loss_at(const struct kiln_model_desc *m, const void *const *in, void *ws)
{
	float l = NAN;
	void *out[1] = {&l};
	kiln_status st = m->run(in, out, ws);
	if (st != KILN_OK) {
		fprintf(stderr, "gradcheck: the loss failed: %s\n",
		        kiln_status_str(st));
		exit(1);
	}
	return l;
}

/* (L(x + e) - L(x - e)) / 2e at element i of the f32 input x. */
static double
central(const struct kiln_model_desc *m, const void *const *in, void *ws,
        float *x, int64_t i, float e)
{
	float keep = x[i];
	x[i] = keep + e;
	double hi = loss_at(m, in, ws);
	x[i] = keep - e;
	double lo = loss_at(m, in, ws);
	x[i] = keep;
	return (hi - lo) / (2.0 * (double)e);
}

int
kiln_gradcheck_main(int argc, char **argv, const struct kiln_model_desc *loss,
                    const struct kiln_model_desc *grad)
{
	double rel = 1e-2, tol = 2e-2;
	int64_t samples = 64;
	uint64_t seed = 1;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--eps") == 0 && i + 1 < argc)
			rel = atof(argv[++i]);
		else if (strcmp(argv[i], "--tol") == 0 && i + 1 < argc)
			tol = atof(argv[++i]);
		else if (strcmp(argv[i], "--samples") == 0 && i + 1 < argc)
			samples = atoll(argv[++i]);
		else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
			seed = strtoull(argv[++i], NULL, 10);
		else {
			fprintf(stderr, "usage: %s [--eps E] [--tol T] [--samples N] "
			        "[--seed S]\n", argv[0]);
			return 2;
		}
	}
	int nin = loss->ninputs;
	void **in = alloc((size_t)(nin + 1) * sizeof *in);
	void **out = alloc((size_t)(grad->noutputs + 1) * sizeof *out);
	size_t wsb = loss->workspace_bytes > grad->workspace_bytes ?
	             loss->workspace_bytes : grad->workspace_bytes;
	void *ws = alloc(wsb);
	for (int k = 0; k < nin; k++) {
		const struct kiln_tensor_desc *t = &loss->inputs[k];
		int64_t n = numel(t);
		in[k] = alloc((size_t)n * kiln_dtype_size(t->dtype));
		if (t->dtype != KILN_F32) {
			fprintf(stderr, "gradcheck: input '%s' is %s; integer data "
			        "belongs in constants of the model\n", t->name,
			        kiln_dtype_name(t->dtype));
			return 1;
		}
		/* uniform in [-1, 1), away from 0 so relative steps stay small */
		for (int64_t j = 0; j < n; j++) {
			uint64_t u = kiln_splitmix64(seed + (uint64_t)k, (uint64_t)j);
			((float *)in[k])[j] = (float)((double)(u >> 11) * 0x1p-52 - 1.0);
		}
	}
	for (int k = 0; k < grad->noutputs; k++)
		out[k] = alloc((size_t)numel(&grad->outputs[k]) * sizeof(float));
	kiln_status st = grad->run((const void *const *)in, out, ws);
	if (st != KILN_OK) {
		fprintf(stderr, "gradcheck: the gradient failed: %s\n",
		        kiln_status_str(st));
		return 1;
	}
	int bad = 0;
	int64_t checked = 0, kinks = 0;
	double floor = 1e-3 * fmax(1.0, fabs(*(const float *)out[0]));
	/* outputs: L, then d/d(input) for the inputs named "d.NAME" */
	for (int k = 1; k < grad->noutputs; k++) {
		const char *name = grad->outputs[k].name + 2;
		int x = -1;
		for (int j = 0; j < nin && x < 0; j++)
			if (strcmp(loss->inputs[j].name, name) == 0)
				x = j;
		if (x < 0) {
			fprintf(stderr, "gradcheck: no input for output '%s'\n",
			        grad->outputs[k].name);
			return 1;
		}
		int64_t n = numel(&loss->inputs[x]);
		int64_t step = n > samples ? n / samples : 1;
		double worst = 0;
		int64_t nbad = 0, nk = 0, nc = 0;
		const float *g = out[k];
		float *xv = in[x];
		double gmax = 0;
		for (int64_t i = 0; i < n; i++)
			gmax = fmax(gmax, fabs(g[i]));
		for (int64_t i = 0; i < n; i += step) {
			float e = (float)(rel * fmax(1.0, fabs(xv[i])));
			double d1 = central(loss, (const void *const *)in, ws, xv, i, e);
			double d2 = central(loss, (const void *const *)in, ws, xv, i,
			                    e / 2);
			double scale = fmax(fmax(fabs(g[i]), 0.05 * gmax), floor);
			if (fabs(d1 - d2) > tol * scale) {
				nk++;
				continue;
			}
			double err = fabs(d2 - g[i]) / scale;
			nc++;
			if (err > worst)
				worst = err;
			if (err > tol && nbad++ < 3)
				printf("  %s[%lld]: autodiff %.6g, finite difference %.6g\n",
				       name, (long long)i, g[i], d2);
		}
		printf("%s: %lld of %lld elements checked, %lld at kinks, worst "
		       "error %.3g: %s\n", name, (long long)nc, (long long)n,
		       (long long)nk, worst, nbad ? "FAIL" : "ok");
		bad += nbad > 0 || (nc == 0 && n > 0);
		checked += nc;
		kinks += nk;
	}
	printf("gradcheck: %d inputs, %lld elements checked, %lld at kinks: %s\n",
	       grad->noutputs - 1, (long long)checked, (long long)kinks,
	       bad ? "FAIL" : "ok");
	for (int k = 0; k < nin; k++)
		free(in[k]);
	for (int k = 0; k < grad->noutputs; k++)
		free(out[k]);
	free(in);
	free(out);
	free(ws);
	return bad ? 1 : 0;
}
