// Baseline x86-64 / any-architecture build of the CPU epilogue kernels.
#define GANFORGE_KERNEL_NS cpu_default
#include "cpu_kernels.inc"
