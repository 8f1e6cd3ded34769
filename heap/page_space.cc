// PageSpace: reservation, free pool and class lists. See page_space.h.
#include "heap/page_space.h"

#include <sys/mman.h>

#include <new>

#include "shoal/errors.h"

namespace shoal::internal {

namespace {
void* map_noreserve(size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}
}  // namespace

PageSpace::PageSpace(size_t reserve_bytes) {
  max_pages_ = (reserve_bytes + kPageSize - 1) / kPageSize;
  if (max_pages_ == 0) max_pages_ = 1;
  in_use_ = std::make_unique<std::atomic<uint64_t>[]>(in_use_words());
  reserved_bytes_ = max_pages_ * kPageSize;
  mapping_bytes_ = reserved_bytes_ + kPageSize;  // slack for alignment
  mapping_ = map_noreserve(mapping_bytes_);
  if (!mapping_) throw OutOfMemory(reserved_bytes_, "mmap of the heap's address range failed (lower HeapOptions::heap_limit)");
  base_ = (reinterpret_cast<uintptr_t>(mapping_) + kPageSize - 1) & ~(kPageSize - 1);
  infos_bytes_ = max_pages_ * sizeof(PageInfo);
  infos_ = static_cast<PageInfo*>(map_noreserve(infos_bytes_));
  if (!infos_) {
    munmap(mapping_, mapping_bytes_);
    throw OutOfMemory(infos_bytes_, "mmap of the page side table failed");
  }
}

PageSpace::~PageSpace() {
  const size_t n = carved_pages();
  for (size_t i = 0; i < n; ++i) infos_[i].~PageInfo();
  munmap(infos_, infos_bytes_);
  munmap(mapping_, mapping_bytes_);
}

PageInfo* PageSpace::take_available(size_t cls) {
  ClassList& list = classes_[cls];
  MutexLock lock(list.mu);
  PageInfo* p = list.head;
  if (p) {
    list.head = p->next;
    p->next = nullptr;
    p->state = PageState::kOwned;
  }
  return p;
}

PageInfo* PageSpace::take_free() {
  MutexLock lock(pool_mu_);
  PageInfo* p = pool_;
  if (p) {
    pool_ = p->next;
    committed_free_count_.fetch_sub(1, std::memory_order_relaxed);
  } else if ((p = decommitted_)) {
    decommitted_ = p->next;
  }
  if (p) {
    p->next = nullptr;
    p->state = PageState::kOwned;
    set_in_use(p->index, true);
    free_count_.fetch_sub(1, std::memory_order_relaxed);
  }
  return p;
}

PageInfo* PageSpace::carve() {
  MutexLock lock(carve_mu_);
  const size_t i = carved_.load(std::memory_order_relaxed);
  if (i >= max_pages_) return nullptr;
  PageInfo* p = new (&infos_[i]) PageInfo();
  p->start = reinterpret_cast<char*>(base_ + i * kPageSize);
  p->index = static_cast<uint32_t>(i);
  p->state = PageState::kOwned;
  p->dirty = false;  // fresh mmap memory is zero
  set_in_use(i, true);
  carved_.store(i + 1, std::memory_order_release);
  carved_granules_.store((i + 1) * kGranulesPerPage, std::memory_order_release);
  return p;
}

void PageSpace::give_available(PageInfo* page) {
  ClassList& list = classes_[page->size_class];
  MutexLock lock(list.mu);
  page->state = PageState::kAvailable;
  page->next = list.head;
  list.head = page;
}

void PageSpace::give_free(PageInfo* page) {
  MutexLock lock(pool_mu_);
  page->state = PageState::kFree;
  set_in_use(page->index, false);
  page->runs = nullptr;
  page->set_cell_size(0);
  push_free(page);
  free_count_.fetch_add(1, std::memory_order_relaxed);
}

void PageSpace::push_free(PageInfo* page) {
  if (page->committed) {
    page->next = pool_;
    pool_ = page;
    committed_free_count_.fetch_add(1, std::memory_order_relaxed);
  } else {
    page->next = decommitted_;
    decommitted_ = page;
  }
}

void PageSpace::reset_class_lists_in_pause() {
  for (auto& list : classes_) list.head = nullptr;
}

void PageSpace::reset_lists_in_pause() {
  pool_ = nullptr;
  decommitted_ = nullptr;
  free_count_.store(0, std::memory_order_relaxed);
  committed_free_count_.store(0, std::memory_order_relaxed);
  for (auto& list : classes_) list.head = nullptr;
}

namespace {
void decommit(PageInfo* p) {
  madvise(p->start, kPageSize, MADV_DONTNEED);
  p->committed = false;
  p->dirty = false;  // DONTNEED on private anonymous memory reads back as zero
}
}  // namespace

size_t PageSpace::decommit_free_pages() {
  MutexLock lock(pool_mu_);
  size_t released = 0;
  while (PageInfo* p = pool_) {
    pool_ = p->next;
    committed_free_count_.fetch_sub(1, std::memory_order_relaxed);
    decommit(p);
    push_free(p);
    released += kPageSize;
  }
  return released;
}

size_t PageSpace::decommit_free_pages_beyond(size_t keep_pages, size_t max_pages) {
  // Cut the list after keep_pages and take up to max_pages from there; free_count_
  // still counts them (they are free, only unlisted for the madvise).
  PageInfo* taken = nullptr;
  size_t n = 0;
  {
    MutexLock lock(pool_mu_);
    PageInfo** link = &pool_;
    for (size_t i = 0; i < keep_pages && *link; ++i) link = &(*link)->next;
    while (n < max_pages && *link) {
      PageInfo* p = *link;
      *link = p->next;
      p->next = taken;
      taken = p;
      ++n;
    }
    committed_free_count_.fetch_sub(n, std::memory_order_relaxed);
  }
  if (n == 0) return 0;
  for (PageInfo* p = taken; p; p = p->next) decommit(p);
  MutexLock lock(pool_mu_);
  while (PageInfo* p = taken) {
    taken = p->next;
    push_free(p);
  }
  return n * kPageSize;
}

}  // namespace shoal::internal
