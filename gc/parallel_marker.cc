// The parallel marker's pool and work list. See parallel_marker.h for the algorithm and
// its termination argument.
#include "gc/parallel_marker.h"

#include <algorithm>
#include <mutex>
#include <new>
#include <system_error>

#include "gc/thread_registry.h"
#include "shoal/internal/check.h"

namespace shoal::internal {

void MarkTotals::add(Marker& m) {
  objects_marked += m.objects_marked();
  bytes_traced += m.bytes_traced();
  std::vector<Slot*>& w = m.weak_slots();
  weak_slots.insert(weak_slots.end(), w.begin(), w.end());
  std::vector<Marker::EphemeronSlots>& e = m.ephemerons();
  ephemerons.insert(ephemerons.end(), e.begin(), e.end());
}

ParallelMarker::~ParallelMarker() {
  {
    MutexLock lock(mu_);
    shutdown_ = true;
  }
  job_cv_.notify_all();
  for (std::thread& t : helpers_) t.join();
}

void ParallelMarker::start_helpers(unsigned workers) {
  MutexLock lock(mu_);
  start_helpers_locked(workers);
}

void ParallelMarker::start_helpers_locked(unsigned workers) {
  while (helpers_.size() + 1 < workers) {
    const size_t index = helpers_.size() + 1;
    try {
      if (index >= helper_limit_for_testing_.load(std::memory_order_relaxed))
        throw std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again), "test limit");
      helpers_.emplace_back([this, index] { helper_main(index); });
    } catch (const std::system_error&) {
      return;  // the system refuses threads: the drains mark with those there are
    } catch (const std::bad_alloc&) {
      return;
    }
    name_thread(helpers_.back(), "shoal-mark", index);
  }
}

void ParallelMarker::drain(std::vector<Object*>&& grey, unsigned workers, MarkTotals& totals,
                           const std::function<void(Object*)>* after_each, const ThreadRegistry* step_aside) {
  MutexLock one_drain(drain_mu_);
  if (grey.empty()) return;
  workers = std::max(1u, workers);
  if (after_each && *after_each) workers = 1;  // the test hook wants one tracing thread
  bool parallel = workers > 1 && grey.size() > 1;
  {
    MutexLock lock(mu_);
    SHOAL_CHECK(terminated_ && chunks_.empty());
    if (parallel) {
      // (Pauses started theirs already; a concurrent drain may want more.) With fewer
      // helpers than asked for - the system refused a thread - it marks with those.
      start_helpers_locked(workers);
      workers = std::min(workers, static_cast<unsigned>(helpers_.size() + 1));
      parallel = workers > 1;
    }
    // Seed: a single worker just takes the whole vector; otherwise cut it into chunks.
    markers_.assign(workers, Marker(heap_));
    if (parallel) {
      for (size_t i = 0; i < grey.size(); i += kChunk) {
        const size_t end = std::min(grey.size(), i + kChunk);
        chunks_.emplace_back(grey.begin() + static_cast<std::ptrdiff_t>(i), grey.begin() + static_cast<std::ptrdiff_t>(end));
      }
    } else {
      chunks_.push_back(std::move(grey));
    }
    assist_wanted_.store(false, std::memory_order_relaxed);  // (a request from an earlier drain)
    job_workers_ = parallel ? workers : 1;
    joined_ = 1;  // the caller
    idle_ = 0;
    left_ = 0;
    terminated_ = false;
    after_each_ = after_each;
    step_aside_ = step_aside;
    ++epoch_;
  }
  if (parallel) job_cv_.notify_all();
  work(0, after_each, step_aside);
  {
    std::unique_lock<Mutex> lock(mu_);
    done_cv_.wait(lock, [&]() SHOAL_NO_THREAD_SAFETY_ANALYSIS { return left_ + 1 == joined_; });
  }
  {
    MutexLock lock(mu_);
    SHOAL_CHECK(chunks_.empty());
  }
  for (Marker& m : markers_) totals.add(m);
}

void ParallelMarker::helper_main(size_t index) SHOAL_NO_THREAD_SAFETY_ANALYSIS {
  lower_collector_thread_priority();
  uint64_t seen = 0;
  for (;;) {
    const std::function<void(Object*)>* after_each;
    const ThreadRegistry* step_aside;
    {
      std::unique_lock<Mutex> lock(mu_);
      job_cv_.wait(lock, [&]() SHOAL_NO_THREAD_SAFETY_ANALYSIS { return shutdown_ || (epoch_ != seen && !terminated_ && index < job_workers_); });
      if (shutdown_) return;
      seen = epoch_;
      ++joined_;
      after_each = after_each_;
      step_aside = step_aside_;
    }
    work(index, after_each, step_aside);
    {
      MutexLock lock(mu_);
      ++left_;
    }
    done_cv_.notify_all();
  }
}

void ParallelMarker::work(size_t index, const std::function<void(Object*)>* after_each,
                          const ThreadRegistry* step_aside) {
  Marker& m = markers_[index];
  for (;;) {
    if (!m.has_grey() && !take_chunk(m)) return;
    const size_t before = m.bytes_traced();
    m.drain_some(kStep, after_each);
    traced_bytes_.fetch_add(m.bytes_traced() - before, std::memory_order_relaxed);
    if (step_aside) step_aside_while_stopping(*step_aside);
    // (For an assist any stack will do: a deep object graph's stack is shallow - a
    // tree's is its depth - and its bottom entries are the roots of large subgraphs.)
    const bool for_peer = m.grey_count() >= 2 * kMinDonation && hungry_.load(std::memory_order_relaxed) > 0;
    const bool for_assist = m.grey_count() >= 2 && assist_wanted_.load(std::memory_order_relaxed);
    if (for_peer || for_assist) {
      if (for_assist) assist_wanted_.store(false, std::memory_order_relaxed);
      donate(m.split_off(m.grey_count() / 2));
    }
  }
}

bool ParallelMarker::take_chunk(Marker& m) SHOAL_NO_THREAD_SAFETY_ANALYSIS {
  std::unique_lock<Mutex> lock(mu_);
  for (;;) {
    if (!chunks_.empty()) {
      m.adopt_grey(std::move(chunks_.back()));
      chunks_.pop_back();
      return true;
    }
    if (terminated_) return false;
    if (++idle_ == joined_ && assists_ == 0) {  // everyone is idle and no chunk is left
      terminated_ = true;
      lock.unlock();
      work_cv_.notify_all();
      return false;
    }
    hungry_.fetch_add(1, std::memory_order_relaxed);
    work_cv_.wait(lock, [&]() SHOAL_NO_THREAD_SAFETY_ANALYSIS { return terminated_ || !chunks_.empty(); });
    hungry_.fetch_sub(1, std::memory_order_relaxed);
    --idle_;
  }
}

size_t ParallelMarker::assist(Marker& m, size_t budget) noexcept {
  {
    MutexLock lock(mu_);
    if (!takes_assists_locked()) return 0;
    if (chunks_.empty()) {
      assist_wanted_.store(true, std::memory_order_relaxed);
      return 0;
    }
    m.adopt_grey(std::move(chunks_.back()));
    chunks_.pop_back();
    ++assists_;  // the drain cannot end while this assist holds grey objects
  }
  const size_t traced = m.drain_some(budget);
  bool wake_one = false, ended = false;
  {
    MutexLock lock(mu_);
    --assists_;
    if (m.has_grey()) {
      chunks_.push_back(m.take_grey());
      wake_one = true;
    } else if (assists_ == 0 && idle_ == joined_ && chunks_.empty()) {
      terminated_ = true;  // every worker waits for work and none is left: the drain ends
      ended = true;
    }
  }
  if (wake_one) work_cv_.notify_one();
  if (ended) work_cv_.notify_all();
  return traced;
}

bool ParallelMarker::give_to_drain(Marker& m) {
  {
    MutexLock lock(mu_);
    if (!takes_assists_locked()) return false;
    chunks_.push_back(m.take_grey());
  }
  work_cv_.notify_one();
  return true;
}

void ParallelMarker::donate(std::vector<Object*>&& chunk) {
  {
    MutexLock lock(mu_);
    chunks_.push_back(std::move(chunk));
  }
  work_cv_.notify_one();
}

}  // namespace shoal::internal
