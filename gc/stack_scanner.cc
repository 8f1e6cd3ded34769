// Conservative stack scanning and context capture. See stack_scanner.h.
#include "gc/stack_scanner.h"

#include <pthread.h>

#include <csetjmp>
#include <cstring>

namespace shoal::internal {

namespace {
[[gnu::always_inline]] inline void capture_registers(uintptr_t* out) {
#if defined(__x86_64__)
  asm volatile(
      "movq %%rbx, 0(%0)\n\t"
      "movq %%rbp, 8(%0)\n\t"
      "movq %%r12, 16(%0)\n\t"
      "movq %%r13, 24(%0)\n\t"
      "movq %%r14, 32(%0)\n\t"
      "movq %%r15, 40(%0)\n\t"
      :
      : "r"(out)
      : "memory");
#elif defined(__aarch64__)
  asm volatile(
      "stp x19, x20, [%0, #0]\n\t"
      "stp x21, x22, [%0, #16]\n\t"
      "stp x23, x24, [%0, #32]\n\t"
      "stp x25, x26, [%0, #48]\n\t"
      "stp x27, x28, [%0, #64]\n\t"
      "str x29, [%0, #80]\n\t"
      // The low 64 bits of v8-v15 are callee-saved too (AAPCS64) and the compiler may
      // keep a pointer there across calls (bdwgc saves them as well).
      "stp d8, d9, [%0, #88]\n\t"
      "stp d10, d11, [%0, #104]\n\t"
      "stp d12, d13, [%0, #120]\n\t"
      "stp d14, d15, [%0, #136]\n\t"
      :
      : "r"(out)
      : "memory");
#else
  // Portable fallback: setjmp spills the callee-saved registers (possibly mangled; the
  // stack above still holds the caller's spills on common ABIs).
  static_assert(sizeof(std::jmp_buf) <= CapturedContext::kMaxRegisters * sizeof(uintptr_t));
  std::jmp_buf buf;
  setjmp(buf);
  std::memcpy(out, &buf, sizeof(buf));
#endif
}
[[gnu::always_inline]] inline uintptr_t current_stack_pointer() {
  uintptr_t sp;
#if defined(__x86_64__)
  asm volatile("movq %%rsp, %0" : "=r"(sp));
#elif defined(__aarch64__)
  asm volatile("mov %0, sp" : "=r"(sp));
#else
  volatile uintptr_t marker = 0;
  sp = reinterpret_cast<uintptr_t>(&marker);
#endif
  return sp;
}
}  // namespace

[[gnu::noinline]] void with_captured_context(CapturedContext& ctx, void (*fn)(void*), void* arg) {
  capture_registers(ctx.registers);
  // Scan from the current stack pointer, so this frame's own saves of the caller's
  // callee-saved registers (pushed by the prologue) are scanned too.
  ctx.sp = current_stack_pointer();
  fn(arg);
  // Keeps the call above out of tail position, so this frame outlives it.
  asm volatile("" ::: "memory");
}

namespace {
StackBounds read_stack_bounds() {
  pthread_attr_t attr;
  void* addr = nullptr;
  size_t size = 0;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    pthread_attr_getstack(&attr, &addr, &size);
    pthread_attr_destroy(&attr);
  }
  const auto lo = reinterpret_cast<uintptr_t>(addr);
  return {lo, lo + size};
}
}  // namespace

StackBounds current_stack_bounds() {
  // Read once per thread: a thread's own stack does not move, and every attachment asks
  // (each C API call from an unattached thread attaches). On the main thread glibc
  // answers by parsing /proc/self/maps - about 50 us a time, 80x the rest of a C call.
  thread_local const StackBounds bounds = read_stack_bounds();
  return bounds;
}

bool StackBounds::holds_stack_pointer() const {
  const uintptr_t sp = current_stack_pointer();
  return lo == hi || (sp >= lo && sp < hi);  // (no bounds known: assume so)
}

#if defined(__clang__)
#define SHOAL_NO_SANITIZE_SCAN __attribute__((no_sanitize("address", "thread", "memory")))
#else
#define SHOAL_NO_SANITIZE_SCAN __attribute__((no_sanitize_address, no_sanitize_thread))
#endif

SHOAL_NO_SANITIZE_SCAN void scan_words(uintptr_t lo, uintptr_t hi, WordVisitor visit, void* state) {
  lo = (lo + sizeof(uintptr_t) - 1) & ~(sizeof(uintptr_t) - 1);
  for (uintptr_t a = lo; a + sizeof(uintptr_t) <= hi; a += sizeof(uintptr_t))
    visit(state, *reinterpret_cast<const volatile uintptr_t*>(a));
}

SHOAL_NO_SANITIZE_SCAN void collect_words_in_ranges(uintptr_t lo, uintptr_t hi, uintptr_t a_begin, uintptr_t a_end,
                                                    uintptr_t b_begin, uintptr_t b_end, std::vector<uintptr_t>& out) {
  lo = (lo + sizeof(uintptr_t) - 1) & ~(sizeof(uintptr_t) - 1);
  const uintptr_t a_len = a_end - a_begin, b_len = b_end - b_begin;
  for (uintptr_t a = lo; a + sizeof(uintptr_t) <= hi; a += sizeof(uintptr_t)) {
    const uintptr_t w = *reinterpret_cast<const volatile uintptr_t*>(a);
    if ((w - a_begin < a_len) | (w - b_begin < b_len)) [[unlikely]]
      out.push_back(w);
  }
}

}  // namespace shoal::internal
