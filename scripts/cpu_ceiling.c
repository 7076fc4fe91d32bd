/* Hardware-ceiling reference for W2 of scripts/bench.py (NOT part of hhjax).
 *
 * A hand-written, vectorisable C loop of exactly hhjax's default scheme (exp_euler,
 * Rush-Larsen gates first, then V relaxed exponentially on the new conductances; NEURON
 * `hh` parameters, 6.3 degC; rates written as in hhjax/models/hh.py, sharing one exp(-u/20)
 * between the four rates that need it: hhjax shares exp(-u/10) the same way, so results
 * agree to float32 rounding) in float32, on N uncoupled neurons with constant
 * currents linspace(2, 20, N) uA/cm^2, 4000 steps of 0.025 ms, V recorded every 10 steps
 * (time-major, (401, N)), upward 0 mV crossings counted every step.
 *
 * Speed tricks that a compiler-generated loop (XLA) does not get: neurons are processed in
 * blocks of BLOCK that stay in L1/L2 across all 4000 steps (one pass over memory instead of
 * one per step), the blocks are spread over OpenMP threads, and exp is an inline polynomial
 * (Cephes expf) so gcc vectorises the whole step with AVX2/FMA.
 *
 *   gcc -O3 -mavx2 -mfma -ffast-math -fopenmp scripts/cpu_ceiling.c -o cpu_ceiling -lm
 *   OMP_NUM_THREADS=2 ./cpu_ceiling N [repeats] [counts.bin]
 *
 * Prints one JSON line; with a third argument, writes the per-neuron spike counts there
 * (int32, N values) so bench.py can compare them with hhjax's.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define BLOCK 512
#define STEPS 4000
#define REC 10
#define NREC (STEPS / REC + 1)

static const float DT = 0.025f, G_NA = 120.f, G_K = 36.f, G_L = 0.3f;
static const float E_NA = 50.f, E_K = -77.f, E_L = -54.3f, V0 = -65.f;
static const float E1 = 2.718281828f, E25 = 12.18249396f, E3 = 20.08553692f;

/* exp(x) for float32: Cephes range reduction + degree-6 polynomial, ~1-2 ulp. */
static inline float fexp(float x) {
    x = fminf(fmaxf(x, -87.f), 88.f);
    float k = floorf(x * 1.44269504f + 0.5f);
    float r = x - k * 0.693359375f + k * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float y = p * r * r + r + 1.f;
    int32_t bits = ((int32_t)k + 127) << 23;
    float s;
    memcpy(&s, &bits, sizeof s);
    return y * s;
}

/* 1 / exprel(z) = z / (exp(z) - 1) given exp(z); series for |z| < 0.1 as hhjax/rates.py
 * (one division either way, so the select vectorises cheaply). */
static inline float inv_exprel(float z, float ez) {
    int small = fabsf(z) < 0.1f;
    float series = 1.f + z * (0.5f + z * (1.f / 6 + z * (1.f / 24 + z * (1.f / 120))));
    return (small ? 1.f : z) / (small ? series : ez - 1.f);
}

/* The six hh rates at voltage v (1/ms), as hh_rates in hhjax/models/hh.py. */
static inline void rates(float v, float *am, float *bm, float *ah, float *bh, float *an,
                         float *bn) {
    float u = v - V0;
    float e20 = fexp(-u * 0.05f), e10 = e20 * e20, e80 = sqrtf(sqrtf(e20));
    *am = inv_exprel((25.f - u) * 0.1f, E25 * e10);
    *bm = 4.f * fexp(-u * (1.f / 18.f));
    *ah = 0.07f * e20;
    *bh = 1.f / (E3 * e10 + 1.f);
    *an = 0.1f * inv_exprel((10.f - u) * 0.1f, E1 * e10);
    *bn = 0.125f * e80;
}

/* One block of n <= BLOCK neurons through all steps; rec points at column 0 of the block. */
static void block(int n, long ldrec, const float *restrict I, float *restrict rec,
                  int32_t *restrict count) {
    float V[BLOCK], M[BLOCK], H[BLOCK], Nn[BLOCK];
    int32_t C[BLOCK];
    for (int i = 0; i < n; i++) {
        float am, bm, ah, bh, an, bn;
        rates(V0, &am, &bm, &ah, &bh, &an, &bn);
        V[i] = V0, M[i] = am / (am + bm), H[i] = ah / (ah + bh), Nn[i] = an / (an + bn);
        C[i] = 0;
        rec[i] = V0;
    }
    for (int r = 1; r < NREC; r++) {
        for (int s = 0; s < REC; s++) {
#pragma omp simd
            for (int i = 0; i < n; i++) {
                float v = V[i], am, bm, ah, bh, an, bn;
                rates(v, &am, &bm, &ah, &bh, &an, &bn);
                float sm = am + bm, sh = ah + bh, sn = an + bn;
                float mi = am / sm, hi = ah / sh, ni = an / sn;
                float m = mi + (M[i] - mi) * fexp(-DT * sm);
                float h = hi + (H[i] - hi) * fexp(-DT * sh);
                float k = ni + (Nn[i] - ni) * fexp(-DT * sn);
                float k2 = k * k, gna = G_NA * m * m * m * h, gk = G_K * k2 * k2;
                float g = gna + gk + G_L;
                float vinf = (gna * E_NA + gk * E_K + G_L * E_L + I[i]) / g;
                float vn = vinf + (v - vinf) * fexp(-DT * g);
                C[i] += (v < 0.f) & (vn >= 0.f);
                V[i] = vn, M[i] = m, H[i] = h, Nn[i] = k;
            }
        }
        memcpy(rec + (long)r * ldrec, V, sizeof(float) * n);
    }
    memcpy(count, C, sizeof(int32_t) * n);
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s N [repeats] [counts.bin]\n", argv[0]);
        return 2;
    }
    long N = atol(argv[1]);
    int repeats = argc > 2 ? atoi(argv[2]) : 5;
    if (N < 1 || repeats < 1 || repeats > 100) return 2;
    float *I = malloc(sizeof(float) * N);
    float *rec = malloc(sizeof(float) * N * NREC);
    int32_t *count = malloc(sizeof(int32_t) * N);
    if (!I || !rec || !count) return 3;
    for (long i = 0; i < N; i++) I[i] = N > 1 ? 2.f + 18.f * (float)i / (float)(N - 1) : 2.f;
    memset(rec, 0, sizeof(float) * N * NREC); /* touch the pages before timing */
    double t[101];
    for (int k = 0; k <= repeats; k++) { /* k = 0: warm-up */
        double t0 = now();
#pragma omp parallel for schedule(static)
        for (long b = 0; b < N; b += BLOCK)
            block(N - b < BLOCK ? (int)(N - b) : BLOCK, N, I + b, rec + b, count + b);
        t[k] = now() - t0;
    }
    long total = 0;
    double vsum = 0;
    for (long i = 0; i < N; i++) total += count[i], vsum += rec[(long)(NREC - 1) * N + i];
    if (argc > 3) {
        FILE *f = fopen(argv[3], "wb");
        if (!f || fwrite(count, sizeof(int32_t), N, f) != (size_t)N) return 4;
        fclose(f);
    }
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    double first = t[0];
    qsort(t + 1, repeats, sizeof(double), cmp);
    double med = repeats % 2 ? t[1 + repeats / 2] : 0.5 * (t[repeats / 2] + t[1 + repeats / 2]);
    printf("{\"system\": \"cpu_ceiling.c\", \"n\": %ld, \"steps\": %d, \"threads\": %d, "
           "\"block\": %d, \"repeats\": %d, \"first_run_s\": %.6g, \"run_s_median\": %.6g, "
           "\"run_s_min\": %.6g, \"neuron_steps_per_s\": %.6g, \"spikes_total\": %ld, "
           "\"v_last_mean\": %.6g}\n",
           N, STEPS, threads, BLOCK, repeats, first, med, t[1], (double)N * STEPS / med, total,
           vsum / N);
    free(I), free(rec), free(count);
    return 0;
}
