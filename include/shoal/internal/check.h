// Internal assertions. SHOAL_CHECK always runs; SHOAL_DCHECK runs in debug builds and
// when configured with -DSHOAL_ASSERTIONS=ON. A failed check is a bug in Shoal (misuse
// by callers raises typed errors instead): it prints the condition and aborts.
#pragma once

namespace shoal::internal {
[[noreturn]] void check_failed(const char* file, int line, const char* condition);
}

#define SHOAL_CHECK(cond) \
  ((cond) ? (void)0 : ::shoal::internal::check_failed(__FILE__, __LINE__, #cond))
#if defined(SHOAL_ENABLE_DCHECKS)
#define SHOAL_DCHECK(cond) SHOAL_CHECK(cond)
#else
#define SHOAL_DCHECK(cond) ((void)0)
#endif
