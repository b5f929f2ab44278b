// AVX2 + FMA build of the CPU epilogue kernels; used only when the CPU reports AVX2.
#if defined(__x86_64__) && defined(__GNUC__)
#pragma GCC target("avx2,fma,f16c")
#include "isa_avx2_macros.h"
#define CPU_CAPABILITY AVX2
#define CPU_CAPABILITY_AVX2
#endif
#define GANFORGE_KERNEL_NS cpu_avx2
#include "cpu_kernels.inc"
