// Clang thread-safety annotations: Shoal's compile-time "lock names".
//
// A field declared SHOAL_GUARDED_BY(mu) may only be touched with `mu` held; a function
// declared SHOAL_REQUIRES(mu) may only be called with it held. Clang checks this with
// -Wthread-safety (the clang build turns it on); other compilers see empty macros.
// This is the C++ form of the Swift "lock names" pitch (seeds/swift-lock-names-pitch.md).
#pragma once

#if defined(__clang__)
#define SHOAL_TSA(x) __attribute__((x))
#else
#define SHOAL_TSA(x)
#endif

#define SHOAL_CAPABILITY(name) SHOAL_TSA(capability(name))
#define SHOAL_SCOPED_CAPABILITY SHOAL_TSA(scoped_lockable)
#define SHOAL_GUARDED_BY(x) SHOAL_TSA(guarded_by(x))
#define SHOAL_PT_GUARDED_BY(x) SHOAL_TSA(pt_guarded_by(x))
#define SHOAL_REQUIRES(...) SHOAL_TSA(requires_capability(__VA_ARGS__))
#define SHOAL_ACQUIRE(...) SHOAL_TSA(acquire_capability(__VA_ARGS__))
#define SHOAL_RELEASE(...) SHOAL_TSA(release_capability(__VA_ARGS__))
#define SHOAL_TRY_ACQUIRE(...) SHOAL_TSA(try_acquire_capability(__VA_ARGS__))
#define SHOAL_EXCLUDES(...) SHOAL_TSA(locks_excluded(__VA_ARGS__))
#define SHOAL_ASSERT_CAPABILITY(x) SHOAL_TSA(assert_capability(x))
#define SHOAL_NO_THREAD_SAFETY_ANALYSIS SHOAL_TSA(no_thread_safety_analysis)
