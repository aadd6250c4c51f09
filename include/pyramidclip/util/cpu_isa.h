#pragma once
// Run-time choice among builds of one CPU kernel (the hand-written loops of the fused attention,
// QuickGELU and AdamW kernels): the loop body is an always-inline function, instantiated once per
// instruction set inside functions marked PC_TARGET_AVX512 / PC_TARGET_AVX2, and the caller
// branches on cpu_isa(). One binary then runs on any x86-64 and uses the widest vectors the CPU
// has (Debian's LibTorch itself is built for baseline x86-64 plus its own dispatch).
namespace pc {

enum class CpuIsa { kBaseline, kAvx2, kAvx512 };

// AVX-512 (F, VL, DQ, BW) with FMA, else AVX2 with FMA, else baseline; detected once.
CpuIsa cpu_isa();

}  // namespace pc

#define PC_INLINE inline __attribute__((always_inline))
#if defined(__x86_64__) && defined(__GNUC__)
#define PC_HAVE_ISA_TARGETS 1
#define PC_TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma,bmi2")))
#define PC_TARGET_AVX2 __attribute__((target("avx2,fma,bmi2")))
#else
#define PC_HAVE_ISA_TARGETS 0
#endif
