// Large-object space over jemalloc. See large_object_space.h.
#include "heap/large_object_space.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <new>
#include <string>

#if !defined(SHOAL_SANITIZER_BUILD)
#include <jemalloc/jemalloc.h>
#endif

namespace shoal::internal {

namespace {
#if !defined(SHOAL_SANITIZER_BUILD)
// Large objects live in a jemalloc arena of their own, without the thread cache, so
// that what a sweep frees can be purged (LargeObjectSpace::purge_freed) without
// touching the process's other allocations; jemalloc's default arenas, through the
// thread cache (flags 0), if the arena cannot be made.
struct LargeArena {
  int index = -1;
  int flags = 0;
  std::string purge;  // its mallctl name ("arena.<i>.purge"); empty without the arena
};
const LargeArena& large_arena() {
  // (Never destroyed: a Heap with static storage frees its large objects after this
  // function's statics would be gone.)
  static const LargeArena& arena = *new LargeArena([] {
    LargeArena a;
    unsigned index = 0;
    size_t size = sizeof(index);
    if (mallctl("arenas.create", &index, &size, nullptr, 0) != 0) return a;
    a.index = static_cast<int>(index);
    a.flags = static_cast<int>(MALLOCX_ARENA(index) | MALLOCX_TCACHE_NONE);
    a.purge = "arena." + std::to_string(index) + ".purge";
    return a;
  }());
  return arena;
}
int arena_flags() { return large_arena().flags; }
#endif

void* raw_allocate(size_t bytes) {
#if defined(SHOAL_SANITIZER_BUILD)
  void* p = std::aligned_alloc(64, (bytes + 63) & ~size_t{63});
  if (p) std::memset(p, 0, bytes);
  return p;
#else
  return mallocx(bytes, MALLOCX_ALIGN(64) | MALLOCX_ZERO | arena_flags());
#endif
}
void raw_free(void* p, size_t bytes) {
#if defined(SHOAL_SANITIZER_BUILD)
  (void)bytes;
  std::free(p);
#else
  sdallocx(p, bytes, MALLOCX_ALIGN(64) | arena_flags());
#endif
}
}  // namespace

int LargeObjectSpace::arena_index() {
#if defined(SHOAL_SANITIZER_BUILD)
  return -1;
#else
  return large_arena().index;
#endif
}

void LargeObjectSpace::purge_freed() {
  if (freed_unpurged_.exchange(0, std::memory_order_relaxed) == 0) return;
#if !defined(SHOAL_SANITIZER_BUILD)
  if (const std::string& purge = large_arena().purge; !purge.empty()) mallctl(purge.c_str(), nullptr, nullptr, nullptr, 0);
#endif
}

size_t LargeObjectSpace::allocation_size(size_t bytes, bool carded) {
  const size_t requested =
      sizeof(LargeObject) + ((bytes + 15) & ~size_t{15}) + (carded ? kCardSets * LargeObject::cards_for(bytes) : 0);
#if defined(SHOAL_SANITIZER_BUILD)
  return (requested + 63) & ~size_t{63};
#else
  const size_t rounded = nallocx(requested, MALLOCX_ALIGN(64) | arena_flags());
  return rounded != 0 ? rounded : requested;  // (0: past jemalloc's sizes; the allocation fails)
#endif
}

LargeObjectSpace::~LargeObjectSpace() {
  MutexLock lock(mu_);
  while (head_) {
    LargeObject* l = head_;
    head_ = l->next;
    raw_free(l, l->allocation_bytes);
  }
}

Object* LargeObjectSpace::allocate(size_t bytes, uint64_t header_word) {
  // Cards only for an object the barrier remembers by card (header::kCarded, with
  // generations): card_count 0 otherwise, and nothing after the object.
  const bool carded = (header_word & header::kCarded) != 0;
  const size_t total = allocation_size(bytes, carded);
  void* mem = raw_allocate(total);
  if (!mem) return nullptr;
  auto* l = new (mem) LargeObject{};
  l->object_bytes = bytes;
  l->allocation_bytes = total;
  l->card_count = carded ? LargeObject::cards_for(bytes) : 0;
  l->magic = LargeObject::kMagic;
  Object* o = new (l->object()) Object(header_word);
  {
    MutexLock lock(mu_);
    l->next = head_;
    if (head_) head_->prev = l;
    head_ = l;
    since_index_.insert(l);
  }
  count_.fetch_add(1, std::memory_order_relaxed);
  bytes_.fetch_add(total, std::memory_order_relaxed);
  return o;
}

void LargeObjectSpace::build_index_in_pause() {
  index_.clear();
  for (LargeObject* l = head_; l; l = l->next) index_.push_back(l);
  std::sort(index_.begin(), index_.end());
  since_index_.clear();
}

bool LargeObjectSpace::is_object_start(const Object* o) const {
  const LargeObject* l = LargeObject::of(o);  // address arithmetic only
  if (std::binary_search(index_.begin(), index_.end(), l, std::less<const LargeObject*>())) return true;
  MutexLock lock(mu_);
  return since_index_.count(l) != 0;
}

LargeObject* LargeObjectSpace::find_containing_any(uintptr_t a) const {
  if (LargeObject* l = find_containing(a)) return l;
  MutexLock lock(mu_);
  for (const LargeObject* l : since_index_)
    if (a >= l->begin() && a < l->end()) return const_cast<LargeObject*>(l);
  return nullptr;
}

LargeObject* LargeObjectSpace::find_containing(uintptr_t a) const {
  // The last object whose record starts at or below a.
  auto it = std::upper_bound(index_.begin(), index_.end(), a,
                             [](uintptr_t v, const LargeObject* l) { return v < reinterpret_cast<uintptr_t>(l); });
  if (it == index_.begin()) return nullptr;
  LargeObject* l = *(it - 1);
  return (a >= l->begin() && a < l->end()) ? l : nullptr;
}

LargeObjectSpace::SweepResult LargeObjectSpace::sweep_in_pause(bool poison, bool keep_marks) {
  SweepResult r;
  LargeObject* l = head_;
  while (l) {
    LargeObject* next = l->next;
    if (l->mark.load(std::memory_order_relaxed)) {
      if (!keep_marks) l->mark.store(0, std::memory_order_relaxed);
      r.live_bytes += l->allocation_bytes;
    } else {
      if (l->prev) l->prev->next = l->next;
      else head_ = l->next;
      if (l->next) l->next->prev = l->prev;
      r.freed_bytes += l->allocation_bytes;
      ++r.freed_objects;
      if (poison) std::memset(static_cast<void*>(l->object()), 0xdb, l->object_bytes);
      l->magic = 0;
      raw_free(l, l->allocation_bytes);
    }
    l = next;
  }
  count_.fetch_sub(r.freed_objects, std::memory_order_relaxed);
  bytes_.fetch_sub(r.freed_bytes, std::memory_order_relaxed);
  freed_unpurged_.fetch_add(r.freed_bytes, std::memory_order_relaxed);
  build_index_in_pause();  // the rest of the pause (the verifier) sees only survivors
  return r;
}

}  // namespace shoal::internal
