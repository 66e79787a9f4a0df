/* Pin the libm entry points that glibc 2.29 re-versioned (new, faster exp/log/pow/exp2/log2)
 * to their original GLIBC_2.2.5 versions, so that objects compiled with `-include glibc228.h`
 * on a newer glibc still load on glibc 2.28 (RHEL 8).  x86_64 only: 2.2.5 is its base version.
 * Not in assembler sources (CPython 3.12+ builds Python/asm_trampoline.S with the same CFLAGS). */
#if defined(__x86_64__) && !defined(__ASSEMBLER__) && !defined(OPENWATCH_GLIBC228_H)
#define OPENWATCH_GLIBC228_H
__asm__(".symver exp,exp@GLIBC_2.2.5");
__asm__(".symver log,log@GLIBC_2.2.5");
__asm__(".symver pow,pow@GLIBC_2.2.5");
__asm__(".symver exp2,exp2@GLIBC_2.2.5");
__asm__(".symver log2,log2@GLIBC_2.2.5");
#endif
