// AVX2 + FMA build of the CPU epilogue kernels; used only when the CPU reports AVX2.
#if defined(__x86_64__) && defined(__GNUC__)
#pragma GCC target("avx2,fma,f16c")
// The pragma does not define the feature macros that SLEEF's and ATen's headers test, so say it.
#ifndef __AVX__
#define __AVX__ 1
#endif
#ifndef __AVX2__
#define __AVX2__ 1
#endif
#ifndef __FMA__
#define __FMA__ 1
#endif
#ifndef __F16C__
#define __F16C__ 1
#endif
#define CPU_CAPABILITY AVX2
#define CPU_CAPABILITY_AVX2
#endif
#define GANFORGE_KERNEL_NS cpu_avx2
#include "cpu_kernels.inc"
