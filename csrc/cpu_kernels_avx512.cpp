// AVX-512 build of the CPU epilogue kernels; used only when the CPU reports AVX-512 F/BW/VL/DQ.
#if defined(__x86_64__) && defined(__GNUC__)
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")
#include "isa_avx2_macros.h"
#ifndef __AVX512F__  // as in isa_avx2_macros.h: the pragma does not define these
#define __AVX512F__ 1
#define __AVX512BW__ 1
#define __AVX512VL__ 1
#define __AVX512DQ__ 1
#endif
#define CPU_CAPABILITY AVX512
#define CPU_CAPABILITY_AVX512
#endif
#define GANFORGE_KERNEL_NS cpu_avx512
#include "cpu_kernels.inc"
