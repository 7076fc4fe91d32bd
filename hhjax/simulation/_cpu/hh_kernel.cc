// Fused CPU kernel for many uncoupled classic-HH neurons (exp_euler, float32), registered
// with XLA as the FFI handler `HhjaxHhExpEulerCpu` (see hhjax/simulation/cpu_kernel.py).
//
// The step is the arithmetic of the Pallas kernel (hhjax/pallas_hh.py `_step`): shared
// exponentials written as exp2, one division per gate, V relaxed exponentially on the new
// gates' conductance, exprel series near the 0/0 points. Each block of neurons keeps its
// state and constants in L1 for all time steps (one pass over memory instead of one per
// step); the inner loop over a block is vectorised by the compiler; blocks are spread
// over std::threads. Records are buffered time-major in a small per-block tile and
// written out neuron-major, i.e. directly in hhjax.Trace's layout (no transpose after).
//
// Portability: on x86-64 Linux with GCC/Clang the block function is compiled for
// x86-64-v4 (AVX-512), x86-64-v3 (AVX2+FMA) and the baseline, and the loader picks the
// best one the CPU supports (function multiversioning), so a build never crashes on an
// older CPU. Elsewhere it is compiled for the baseline of the target (NEON on aarch64).
// No -ffast-math: NaN must survive (divergence flags rely on it).

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(HHJAX_NO_CLONES)
#define HHJAX_MULTIVERSIONED 1
#define HHJAX_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define HHJAX_CLONES
#endif
#define HHJAX_INLINE static inline __attribute__((always_inline))

namespace {

// Rows of the per-neuron constant array (the Python wrapper builds it in this order).
enum Row { kVOff, kDtq2, kK, kK2, kGNa, kGeNa, kGK, kGeK, kGL, kIeOff, kIeOn, kRows };

constexpr int kMaxBlock = 256;  // neurons per block: 11 constants + 4 states + 4 ints in L1
constexpr int kTile = 16;       // records buffered per block before writing them out

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kM20 = -kLog2e / 20.0f, kM18 = -kLog2e / 18.0f, kM80 = -kLog2e / 80.0f;
constexpr float kE25 = 12.182493960703473f, kE1 = 2.718281828459045f, kE3 = 20.085536923187668f;

// 2^x in float32 (Cephes exp2f: round to the nearest integer k, degree-6 polynomial on
// [-0.5, 0.5], ~2 ulp). Branch-free so that it vectorises. k is clamped in the integer
// domain (integer min/max vectorise to one instruction each; a float clamp written so
// that NaN passes would cost a compare and a blend): 2^x is 2^-126 for x < -126 and
// finite for x > 127 (only diverged neurons go there). NaN stays NaN (through f).
HHJAX_INLINE float exp2_f(float x) {
  const float shifter = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  float big = x + shifter;
  float kf = big - shifter;
  float f = x - kf;
  float p = 1.535336188319500e-4f;
  p = p * f + 1.339887440266574e-3f;
  p = p * f + 9.618437357674640e-3f;
  p = p * f + 5.550332471162809e-2f;
  p = p * f + 2.402264791363012e-1f;
  p = p * f + 6.931472028550421e-1f;
  p = p * f + 1.0f;
  // big's bits are those of the shifter plus the integer (for |x| < 2^22).
  const int32_t bits0 = 0x4B400000;
  int32_t kb;
  std::memcpy(&kb, &big, sizeof kb);
  kb = kb < bits0 - 126 ? bits0 - 126 : kb;
  kb = kb > bits0 + 127 ? bits0 + 127 : kb;
  int32_t sb = (kb - (bits0 - 127)) << 23;  // 2^k
  float s;
  std::memcpy(&s, &sb, sizeof s);
  return p * s;
}

// Relax a gate over one step: x_inf = num/s, dt*rate = dtq * s/den (one division).
HHJAX_INLINE float gate(float x, float num, float den, float s, float dtq2) {
  float r = 1.0f / (s * den);
  float x_inf = (num * den) * r;
  float decay = exp2_f(-dtq2 * ((s * s) * r));
  return x_inf + (x - x_inf) * decay;
}

// The rates of the three gates at u = V - v_offset (mV), each as alpha = q num/den and
// alpha + beta = q s/den, so that x_inf = num/s.
struct Terms {
  float num_m, den_m, s_m, a_h, b_h, s_h, num_n, den_n, s_n;
};

HHJAX_INLINE Terms terms(float u) {
  Terms t;
  float e20 = exp2_f(u * kM20);  // exp(-u/20)
  float e10 = e20 * e20;
  // m: alpha = q z/(e^z - 1), z = (25 - u)/10; beta = 4 q exp(-u/18)
  float z = 2.5f - 0.1f * u;
  bool small = std::fabs(z) < 0.1f;
  float series = 1.0f + z * (0.5f + z * (1.0f / 6 + z * (1.0f / 24 + z * (1.0f / 120))));
  t.num_m = small ? 1.0f : z;
  t.den_m = small ? series : kE25 * e10 - 1.0f;
  t.s_m = t.num_m + (4.0f * exp2_f(u * kM18)) * t.den_m;
  // h: alpha = 0.07 q exp(-u/20) = q a/b, beta = q/b, b = exp((30 - u)/10) + 1
  t.b_h = kE3 * e10 + 1.0f;
  t.a_h = (0.07f * e20) * t.b_h;
  t.s_h = t.a_h + 1.0f;
  // n: alpha = 0.1 q z/(e^z - 1), z = (10 - u)/10; beta = 0.125 q exp(-u/80)
  z = 1.0f - 0.1f * u;
  small = std::fabs(z) < 0.1f;
  series = 1.0f + z * (0.5f + z * (1.0f / 6 + z * (1.0f / 24 + z * (1.0f / 120))));
  t.num_n = 0.1f * (small ? 1.0f : z);
  t.den_n = small ? series : kE1 * e10 - 1.0f;
  t.s_n = t.num_n + (0.125f * exp2_f(u * kM80)) * t.den_n;
  return t;
}

struct Args {
  const float* c;        // (kRows, n)
  const float* y0;       // (4, n): v, m, h, n
  const int32_t* win;    // (2, n): steps [on, off) that get ie_on instead of ie_off
  float* final_state;    // (4, n)
  int32_t* ints;         // (2, n): spike counts, diverged
  float* rec[4];         // (n, n_rec) per recorded variable, nullptr if not recorded
  int64_t n, n_steps, record_every, n_rec;
  float threshold;       // NaN: no counting (every comparison is false)
  float bound;           // |V| (mV) above which a neuron counts as diverged
  bool init_gates;       // start the gates at steady state at y0's V (y0's gate rows unused)
};

struct Scratch {
  alignas(64) float c[kRows][kMaxBlock];
  alignas(64) float s[4][kMaxBlock];
  alignas(64) int32_t cnt[kMaxBlock], bad[kMaxBlock], on[kMaxBlock], off[kMaxBlock];
  alignas(64) float tile[4][kTile][kMaxBlock];
};

void flush(const Args& a, const Scratch& w, int64_t i0, int nb, int64_t r0, int filled) {
  for (int var = 0; var < 4; var++) {
    float* out = a.rec[var];
    if (!out) continue;
    for (int i = 0; i < nb; i++) {
      float* row = out + (i0 + i) * a.n_rec + r0;
      for (int j = 0; j < filled; j++) row[j] = w.tile[var][j][i];
    }
  }
}

// One block of nb neurons (nb <= bs; lanes nb..bs-1 repeat the last neuron) through all steps.
HHJAX_CLONES void run_block(const Args& a, Scratch& w, int64_t i0, int nb, int bs) {
  for (int i = 0; i < bs; i++) {
    int64_t src = i0 + std::min(i, nb - 1);
    for (int r = 0; r < kRows; r++) w.c[r][i] = a.c[r * a.n + src];
    for (int v = 0; v < 4; v++) w.s[v][i] = a.y0[v * a.n + src];
    if (a.init_gates) {  // x_inf = alpha / (alpha + beta) = num / s
      const Terms t = terms(w.s[0][i] - w.c[kVOff][i]);
      w.s[1][i] = t.num_m / t.s_m;
      w.s[2][i] = t.a_h / t.s_h;
      w.s[3][i] = t.num_n / t.s_n;
    }
    w.on[i] = a.win[src];
    w.off[i] = a.win[a.n + src];
    w.cnt[i] = 0;
    // NaN fails the comparison, so it counts as out of bounds.
    w.bad[i] = !(std::fabs(w.s[0][i]) <= a.bound);
    for (int v = 0; v < 4; v++) w.tile[v][0][i] = w.s[v][i];
  }
  const float thr = a.threshold, bound = a.bound;
  float* __restrict V = w.s[0];
  float* __restrict M = w.s[1];
  float* __restrict H = w.s[2];
  float* __restrict N = w.s[3];
  int32_t* __restrict cnt = w.cnt;
  int32_t* __restrict bad = w.bad;
  const float* __restrict voff = w.c[kVOff];
  const float* __restrict dtq2 = w.c[kDtq2];
  const float* __restrict kk = w.c[kK];
  const float* __restrict kk2 = w.c[kK2];
  const float* __restrict gna = w.c[kGNa];
  const float* __restrict gena = w.c[kGeNa];
  const float* __restrict gk = w.c[kGK];
  const float* __restrict gek = w.c[kGeK];
  const float* __restrict gl = w.c[kGL];
  const float* __restrict ieoff = w.c[kIeOff];
  const float* __restrict ieon = w.c[kIeOn];
  const int32_t* __restrict on = w.on;
  const int32_t* __restrict off = w.off;

  int32_t k = 0;  // global step index
  int filled = 1;  // records in the tile (record 0 = the initial state)
  int64_t r0 = 0;  // record index of tile slot 0
  for (int64_t r = 1; r < a.n_rec; r++) {
    for (int64_t s = 0; s < a.record_every; s++, k++) {
#pragma omp simd
      for (int i = 0; i < bs; i++) {
        float v = V[i];
        const Terms t = terms(v - voff[i]);
        float m = gate(M[i], t.num_m, t.den_m, t.s_m, dtq2[i]);
        float h = gate(H[i], t.a_h, t.b_h, t.s_h, dtq2[i]);
        float n = gate(N[i], t.num_n, t.den_n, t.s_n, dtq2[i]);

        // V relaxes towards (sum g e + I)/G with the new gates' conductance G.
        float m3h = m * m * m * h;
        float n2 = n * n;
        float n4 = n2 * n2;
        float ie = (k >= on[i] && k < off[i]) ? ieon[i] : ieoff[i];
        float g = gna[i] * m3h + (gk[i] * n4 + gl[i]);
        float drive = gena[i] * m3h + (gek[i] * n4 + ie) - g * v;
        float x = kk[i] * g;
        bool tiny = std::fabs(x) < 0.02f;
        float g_safe = tiny ? 1.0f : g;
        float step_tiny = kk[i] * (1.0f - x * (0.5f - x * (1.0f / 6 - x * (1.0f / 24))));
        float step_big = (1.0f - exp2_f(-(kk2[i] * g_safe))) / g_safe;
        float vn = v + drive * (tiny ? step_tiny : step_big);

        cnt[i] += (v < thr) & (vn >= thr);  // hhjax.simulation.trace.upward_crossing
        bad[i] |= !(std::fabs(vn) <= bound);
        V[i] = vn;
        M[i] = m;
        H[i] = h;
        N[i] = n;
      }
    }
    for (int v = 0; v < 4; v++)
      if (a.rec[v]) std::memcpy(w.tile[v][filled], w.s[v], sizeof(float) * bs);
    if (++filled == kTile) {
      flush(a, w, i0, nb, r0, filled);
      r0 += filled;
      filled = 0;
    }
  }
  flush(a, w, i0, nb, r0, filled);
  for (int i = 0; i < nb; i++) {
    bool finite = true;
    for (int v = 0; v < 4; v++) {
      a.final_state[v * a.n + i0 + i] = w.s[v][i];
      finite = finite && std::isfinite(w.s[v][i]);
    }
    a.ints[i0 + i] = w.cnt[i];
    a.ints[a.n + i0 + i] = (w.bad[i] || !finite) ? 1 : 0;
  }
}

// Ask Linux to back a large, freshly allocated output with 2 MB pages before the first
// write: XLA allocates each call's records anew, and faulting them in 4 kB at a time cost
// up to half the run time when V is recorded at every step (N = 1e4, 160 MB).
void advise_huge_pages(float* p, size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  const uintptr_t huge = uintptr_t(1) << 21;
  uintptr_t lo = (reinterpret_cast<uintptr_t>(p) + huge - 1) & ~(huge - 1);
  uintptr_t hi = (reinterpret_cast<uintptr_t>(p) + bytes) & ~(huge - 1);
  if (hi > lo) madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE);  // a hint only
#else
  (void)p, (void)bytes;
#endif
}

// Run every block, spread over `threads` threads (blocks are equal work).
std::string run_all(const Args& a, int64_t threads) {
  if (a.n == 0) return {};
  for (int v = 0; v < 4; v++)
    if (a.rec[v]) advise_huge_pages(a.rec[v], sizeof(float) * a.n * a.n_rec);
  const int64_t t = std::max<int64_t>(1, threads);
  // Lanes per block: a multiple of 16 (one AVX-512 register), at most kMaxBlock, small
  // enough that every thread gets a block.
  int64_t per = (a.n + t - 1) / t;
  int bs = static_cast<int>(std::min<int64_t>(kMaxBlock, ((per + 15) / 16) * 16));
  const int64_t n_blocks = (a.n + bs - 1) / bs;
  const int64_t n_threads = std::min(t, n_blocks);
  std::atomic<int64_t> next{0};
  std::vector<std::string> errors(n_threads);
  auto work = [&](int64_t id) {
    try {
      std::unique_ptr<Scratch> w(new Scratch);
      for (int64_t b; (b = next.fetch_add(1)) < n_blocks;) {
        int64_t i0 = b * bs;
        run_block(a, *w, i0, static_cast<int>(std::min<int64_t>(bs, a.n - i0)), bs);
      }
    } catch (const std::exception& e) {
      errors[id] = e.what();
    }
  };
  std::vector<std::thread> pool;
  try {
    for (int64_t id = 1; id < n_threads; id++) pool.emplace_back(work, id);
  } catch (const std::exception&) {
    // Could not start a thread: the ones that started and this one do all the blocks.
  }
  work(0);
  for (auto& th : pool) th.join();
  for (auto& e : errors)
    if (!e.empty()) return e;
  return {};
}

ffi::Error HhImpl(ffi::Buffer<ffi::F32> consts, ffi::Buffer<ffi::F32> y0,
                  ffi::Buffer<ffi::S32> window, ffi::ResultBuffer<ffi::F32> final_state,
                  ffi::ResultBuffer<ffi::S32> ints, ffi::RemainingRets records,
                  int64_t n_steps, int64_t record_every, float threshold, float bound,
                  int64_t init_gates, int64_t rec_mask, int64_t threads) {
  auto cd = consts.dimensions();
  if (cd.size() != 2 || cd[0] != kRows)
    return ffi::Error::InvalidArgument("hhjax cpu kernel: consts must be (11, n)");
  const int64_t n = cd[1];
  if (y0.element_count() != static_cast<size_t>(4 * n) ||
      window.element_count() != static_cast<size_t>(2 * n) ||
      final_state->element_count() != static_cast<size_t>(4 * n) ||
      ints->element_count() != static_cast<size_t>(2 * n))
    return ffi::Error::InvalidArgument("hhjax cpu kernel: inconsistent neuron counts");
  if (record_every < 1 || n_steps < 1 || n_steps % record_every || n_steps > INT32_MAX)
    return ffi::Error::InvalidArgument("hhjax cpu kernel: bad n_steps/record_every");
  Args a{};
  a.c = consts.typed_data();
  a.y0 = y0.typed_data();
  a.win = window.typed_data();
  a.final_state = final_state->typed_data();
  a.ints = ints->typed_data();
  a.n = n;
  a.n_steps = n_steps;
  a.record_every = record_every;
  a.n_rec = n_steps / record_every + 1;
  a.threshold = threshold;
  a.bound = bound;
  a.init_gates = init_gates != 0;
  size_t used = 0;
  for (int v = 0; v < 4; v++) {
    a.rec[v] = nullptr;
    if (!((rec_mask >> v) & 1)) continue;
    auto buf = records.get<ffi::Buffer<ffi::F32>>(used++);
    if (buf.has_error()) return buf.error();
    if ((*buf)->element_count() != static_cast<size_t>(n * a.n_rec))
      return ffi::Error::InvalidArgument("hhjax cpu kernel: record buffer has the wrong size");
    a.rec[v] = (*buf)->typed_data();
  }
  if (used != records.size())
    return ffi::Error::InvalidArgument("hhjax cpu kernel: rec_mask and outputs disagree");
  std::string err = run_all(a, threads);
  if (!err.empty()) return ffi::Error::Internal("hhjax cpu kernel: " + err);
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(HhjaxHhExpEulerCpu, HhImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()   // consts (11, n)
                                  .Arg<ffi::Buffer<ffi::F32>>()   // y0 (4, n)
                                  .Arg<ffi::Buffer<ffi::S32>>()   // step window (2, n)
                                  .Ret<ffi::Buffer<ffi::F32>>()   // final state (4, n)
                                  .Ret<ffi::Buffer<ffi::S32>>()   // counts, diverged (2, n)
                                  .RemainingRets()                // records (n, n_rec) each
                                  .Attr<int64_t>("n_steps")
                                  .Attr<int64_t>("record_every")
                                  .Attr<float>("threshold")
                                  .Attr<float>("bound")
                                  .Attr<int64_t>("init_gates")
                                  .Attr<int64_t>("rec_mask")
                                  .Attr<int64_t>("threads"));

// The calling convention's version; cpu_kernel.py refuses a library that disagrees.
extern "C" int hhjax_cpu_kernel_abi() { return 3; }

// Which instruction set the block loop runs with on this CPU (for benchmarks and the
// README's "which backend ran" check); it mirrors the clone the loader picks.
extern "C" const char* hhjax_cpu_kernel_isa() {
#if defined(HHJAX_MULTIVERSIONED)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    return "x86-64-v4 (AVX-512: 16 float32 lanes)";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return "x86-64-v3 (AVX2+FMA: 8 float32 lanes)";
  return "x86-64 baseline (SSE2: 4 float32 lanes)";
#elif defined(__aarch64__)
  return "aarch64 (NEON: 4 float32 lanes)";
#else
  return "compiler default for this target";
#endif
}
