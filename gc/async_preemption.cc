// Asynchronous preemption: the signal handler and its installation. See
// async_preemption.h for the conditions and why parking at such a point is sound.
#include "gc/async_preemption.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <mutex>
#include <thread>

#include "gc/thread_registry.h"
#include "heap/heap_impl.h"
#include "shoal/internal/preemption.h"

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SHOAL_TSAN_BUILD 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define SHOAL_TSAN_BUILD 1
#endif

#if defined(__linux__) && (defined(__x86_64__) || defined(__aarch64__)) && !defined(SHOAL_TSAN_BUILD)
#define SHOAL_ASYNC_PREEMPTION 1
#include <dlfcn.h>
#include <link.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>
#endif

namespace shoal::internal {

#if defined(SHOAL_ASYNC_PREEMPTION)
namespace {

constexpr int kPreemptionSignal = SIGURG;

// Executable code where the handler may park a thread: the main program's and the
// object containing Shoal's (the same one unless Shoal was linked into a shared
// library). Written once before the handler is installed, read-only afterwards.
struct CodeRange {
  uintptr_t begin, end;
};
constexpr int kMaxRanges = 16;
CodeRange g_ranges[kMaxRanges];
int g_range_count = 0;
const char* g_unavailable = nullptr;

bool pc_in_own_code(uintptr_t pc) {
  for (int i = 0; i < g_range_count; ++i)
    if (pc >= g_ranges[i].begin && pc < g_ranges[i].end) return true;
  return false;
}

// The interrupted code's program counter and stack pointer.
struct Interrupted {
  uintptr_t pc, sp;
};
Interrupted interrupted(const void* ucontext) {
  const auto* uc = static_cast<const ucontext_t*>(ucontext);
#if defined(__x86_64__)
  return {static_cast<uintptr_t>(uc->uc_mcontext.gregs[REG_RIP]), static_cast<uintptr_t>(uc->uc_mcontext.gregs[REG_RSP])};
#else
  return {static_cast<uintptr_t>(uc->uc_mcontext.pc), static_cast<uintptr_t>(uc->uc_mcontext.sp)};
#endif
}

// The handler runs on the thread's own stack, below the interrupted frame: not on an
// alternate signal stack (another handler with SA_ONSTACK was interrupted - the signal
// frame, holding the registers, would not be in the scanned range).
bool on_own_stack(const MutatorThread* t, uintptr_t interrupted_sp) {
  stack_t ss;
  if (sigaltstack(nullptr, &ss) == 0 && (ss.ss_flags & SS_ONSTACK)) return false;
  const auto here = reinterpret_cast<uintptr_t>(&ss);
  return here < interrupted_sp && interrupted_sp < t->stack_base;
}

void preemption_handler(int, siginfo_t*, void* ucontext);

struct ScanState {
  int objects = 0;  // dl_iterate_phdr reports the main program first
  bool saw_libc = false;
};

int record_object(dl_phdr_info* info, size_t, void* data) {
  auto* state = static_cast<ScanState*>(data);
  const bool is_main = state->objects++ == 0;
  if (info->dlpi_name && std::strstr(info->dlpi_name, "libc.so")) state->saw_libc = true;
  // Record the object's executable segments; keep them only if it is the main program
  // or contains Shoal (this handler).
  const auto handler = reinterpret_cast<uintptr_t>(&preemption_handler);
  const int first = g_range_count;
  bool contains_shoal = false;
  for (int i = 0; i < info->dlpi_phnum && g_range_count < kMaxRanges; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || !(ph.p_flags & PF_X)) continue;
    const uintptr_t b = info->dlpi_addr + ph.p_vaddr;
    contains_shoal |= handler >= b && handler < b + ph.p_memsz;
    g_ranges[g_range_count++] = {b, b + ph.p_memsz};
  }
  if (!is_main && !contains_shoal) g_range_count = first;
  return 0;
}

// Conditions 1 and 4 (async_preemption.h).
bool wants_preemption(const MutatorThread* t) {
  if (t == nullptr || t->switched_stacks || t->state.load(std::memory_order_relaxed) != ThreadState::kRunning)
    return false;
  const uint32_t pw = t->poll_word.load(std::memory_order_relaxed);
  return (pw & kPollRequests) != 0 && (pw & kPollNoPreempt) == 0;
}

void preemption_handler(int, siginfo_t*, void* ucontext) {
  const int saved_errno = errno;
  MutatorThread* t = current_thread();
  if (wants_preemption(t)) {
    if ((tls_no_preempt & ~kPreemptPending) != 0) {
      tls_no_preempt |= kPreemptPending;  // condition 2: park where the region ends
    } else if (const Interrupted at = interrupted(ucontext); pc_in_own_code(at.pc) && on_own_stack(t, at.sp)) {
      t->heap->threads.serve_preemption(t);
    }
  }
  errno = saved_errno;
}

void install() {
  struct sigaction old {};
  if (sigaction(kPreemptionSignal, nullptr, &old) != 0) {
    g_unavailable = "sigaction failed";
    return;
  }
  const bool has_handler = (old.sa_flags & SA_SIGINFO) ? old.sa_sigaction != nullptr
                                                        : (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN);
  if (has_handler) {
    g_unavailable = "the process already handles SIGURG";
    return;
  }
  ScanState state;
  dl_iterate_phdr(record_object, &state);
  if (!state.saw_libc) {
    g_unavailable = "a statically linked executable (libc's code cannot be told from the program's)";
    return;
  }
  if (g_range_count == 0) {
    g_unavailable = "the program's code could not be located";
    return;
  }
  // An allocator linked into the program itself (a static jemalloc/tcmalloc/mimalloc, a
  // static sanitizer runtime, a replaced global operator new) runs in code condition 3
  // cannot tell from the program's: a thread parked inside it could hold a lock the
  // pause's own allocations need.
  for (const char* name : {"malloc", "free", "_Znwm", "_ZdlPv"}) {
    const void* f = dlsym(RTLD_DEFAULT, name);
    if (f && pc_in_own_code(reinterpret_cast<uintptr_t>(f))) {
      g_unavailable = "the memory allocator (malloc or operator new) is linked into the program's own code";
      g_range_count = 0;
      return;
    }
  }
  struct sigaction sa {};
  sa.sa_sigaction = preemption_handler;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;  // not SA_ONSTACK: the registers must land on the scanned stack
  sigemptyset(&sa.sa_mask);
  if (sigaction(kPreemptionSignal, &sa, nullptr) != 0) g_unavailable = "sigaction failed";
}

}  // namespace

void preempt_at_region_exit() {
  tls_no_preempt = 0;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  MutatorThread* t = current_thread();
  if (wants_preemption(t)) t->heap->threads.serve_preemption(t);
}

bool async_preemption_available() {
  static std::once_flag once;
  std::call_once(once, install);
  return g_unavailable == nullptr;
}

const char* preemption_unavailable_reason() { return g_unavailable ? g_unavailable : ""; }

bool send_preemption_signal(MutatorThread* t) { return pthread_kill(t->native_thread, kPreemptionSignal) == 0; }

bool futex_waits_available() { return true; }

void wait_while_equal(const uint32_t* word, uint32_t value, uint64_t timeout_ns) {
  timespec ts{static_cast<time_t>(timeout_ns / 1000000000u), static_cast<long>(timeout_ns % 1000000000u)};
  syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, value, &ts, nullptr, 0);
}

void wake_all_waiters(const uint32_t* word) { syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0); }

#else  // no asynchronous preemption on this platform or in this build

bool async_preemption_available() { return false; }
const char* preemption_unavailable_reason() {
#if defined(SHOAL_TSAN_BUILD)
  return "a ThreadSanitizer build";
#else
  return "not supported on this platform";
#endif
}
bool send_preemption_signal(MutatorThread*) { return false; }
void preempt_at_region_exit() { tls_no_preempt = 0; }
bool futex_waits_available() { return false; }
void wake_all_waiters(const uint32_t*) {}
void wait_while_equal(const uint32_t* word, uint32_t value, uint64_t timeout_ns) {
  if (reinterpret_cast<const std::atomic<uint32_t>*>(word)->load() == value)
    std::this_thread::sleep_for(std::chrono::nanoseconds(std::min<uint64_t>(timeout_ns, 20000)));
}

#endif

}  // namespace shoal::internal
