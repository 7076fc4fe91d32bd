"""Builds the optional fused CPU kernel (hhjax/simulation/_cpu/hh_kernel.cc, an XLA FFI
handler loaded with ctypes). Everything else is in pyproject.toml.

Without a C++ compiler, or without jax's FFI headers, the build prints one note and
installs hhjax without the kernel; ``hhjax.simulate`` then runs on the XLA path.
"""

import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# No -ffast-math: NaN must propagate (divergence flags rely on it), and it would fold the
# kernel's round-to-integer trick away. -march is not set: the kernel is multiversioned in
# the source (AVX-512 / AVX2 / baseline picked at load time). -fschedule-insns: GCC's
# pre-allocation scheduler interleaves the step's long dependency chains (~6 % faster on
# an AVX-512 Zen 4); compilers that do not know it are retried without it.
FLAGS = ["-O3", "-std=c++17", "-fno-math-errno", "-fno-trapping-math", "-fopenmp-simd"]
GCC_FLAGS = ["-fschedule-insns", "-fsched-pressure"]


def note(msg):
    print(f"hhjax: {msg}; hhjax.simulate will use the XLA path on CPU", file=sys.stderr)


class BuildCpuKernel(build_ext):
    def build_extensions(self):
        try:
            import jax.ffi

            include = jax.ffi.include_dir()
        except Exception as exc:  # noqa: BLE001 (any failure: install without the kernel)
            note(f"jax's FFI headers are not available ({exc}); not building the CPU kernel")
            self.extensions = []
            return
        if self.compiler.compiler_type == "msvc":
            note("MSVC is not supported for the CPU kernel")
            self.extensions = []
            return
        for ext in self.extensions:
            ext.extra_compile_args = ["-isystem", include] + FLAGS + GCC_FLAGS
        super().build_extensions()

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception:  # noqa: BLE001 (maybe a compiler without the GCC-only flags)
            ext.extra_compile_args = [f for f in ext.extra_compile_args if f not in GCC_FLAGS]
            try:
                super().build_extension(ext)
            except Exception as exc:  # noqa: BLE001 (no compiler, old compiler, ...)
                note(f"could not build the CPU kernel ({type(exc).__name__}: {exc})")


setup(
    ext_modules=[Extension("hhjax.simulation._cpu._hh_kernel",
                           ["hhjax/simulation/_cpu/hh_kernel.cc"],
                           language="c++", optional=True)],
    cmdclass={"build_ext": BuildCpuKernel},
)
