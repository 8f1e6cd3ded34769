// Conservative stack scanning.
//
// The heap never moves objects, so a thread's stack and registers are scanned
// conservatively: every aligned word in [saved_sp, stack_base) and every saved
// callee-saved register that points into an allocated object (interior pointers
// included) keeps that object alive.
//
// Capturing a thread's context: with_captured_context() saves the callee-saved registers
// into a CapturedContext and records its stack pointer as the scan start, then calls the
// continuation. Every callee-saved register of every caller is then either unchanged
// (so in the saved registers) or spilled in a frame above the scan start (including this
// function's own prologue); caller-saved registers are dead across the call by the ABI.
// The continuation - parking, native code, the collector itself - runs below the scan
// start, and the thread stays inside it for as long as it is safe: it returns to the
// running state before the continuation returns, so the scanned range is live stack
// whenever the collector may look at it.
//
// Sanitizers: scanning reads whatever the stack holds (redzones, dead slots), so the
// scanning loop is exempt from ASan/TSan instrumentation, and ASan builds disable
// detect_stack_use_after_return (fake stacks would hide locals from the scan).
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace shoal::internal {

struct CapturedContext {
  // x86-64: rbx, rbp, r12-r15 (6). AArch64: x19-x29 and d8-d15 (19).
  static constexpr size_t kMaxRegisters = 20;
  uintptr_t sp = 0;
  uintptr_t registers[kMaxRegisters] = {};
};

// Saves registers and the scan start into ctx, then calls fn(arg) in a deeper frame.
void with_captured_context(CapturedContext& ctx, void (*fn)(void*), void* arg);

template <class F>
void with_captured_context(CapturedContext& ctx, F&& f) {
  using Fn = std::remove_reference_t<F>;
  with_captured_context(ctx, [](void* p) { (*static_cast<Fn*>(p))(); }, const_cast<void*>(static_cast<const void*>(&f)));
}

// The current thread's own stack, [lo, hi) - hi is its base - from pthreads (lo == hi
// when unknown).
struct StackBounds {
  uintptr_t lo = 0, hi = 0;
  // False when the thread now runs on a stack other than this one (a fiber's).
  bool holds_stack_pointer() const;
};
StackBounds current_stack_bounds();

// Calls visit(word) for every aligned word in [lo, hi).
using WordVisitor = void (*)(void* state, uintptr_t word);
void scan_words(uintptr_t lo, uintptr_t hi, WordVisitor visit, void* state);

// The root scan's pre-filter: appends to `out` every aligned word in [lo, hi) that lies
// in [a_begin, a_end) or [b_begin, b_end) (the carved pages and the large-object index).
// Two subtractions and compares per word, no call: most stack words (return addresses,
// scalars, pointers to the stack or to malloc'ed memory) cost about a nanosecond.
void collect_words_in_ranges(uintptr_t lo, uintptr_t hi, uintptr_t a_begin, uintptr_t a_end, uintptr_t b_begin,
                             uintptr_t b_end, std::vector<uintptr_t>& out);

}  // namespace shoal::internal
