// Finalizer bookkeeping. See finalizers.h for the model and the invariants.
#include "gc/finalizers.h"

#include "gc/marker.h"

namespace shoal::internal {

uint64_t FinalizerTable::add(Object* target, std::function<void()> callback) {
  MutexLock lock(mu_);
  const uint64_t id = next_id_++;
  live_.push_back({target, id, std::move(callback)});
  return id;
}

bool FinalizerTable::cancel(uint64_t id) {
  // The callback is destroyed after the lock is released: what it captured (a Persistent,
  // say) may take the heap's root lock, which a pause holds while it takes mu_.
  std::function<void()> dropped;
  {
    MutexLock lock(mu_);
    for (auto it = live_.begin(); it != live_.end(); ++it)
      if (it->id == id) {
        dropped = std::move(it->callback);
        live_.erase(it);
        return true;
      }
    for (auto it = pending_.begin(); it != pending_.end(); ++it)
      if (it->id == id) {
        dropped = std::move(it->callback);
        pending_.erase(it);
        return true;
      }
  }
  return false;
}

size_t FinalizerTable::queue_dead_in_pause(HeapImpl& heap) {
  MutexLock lock(mu_);
  size_t queued = 0;
  size_t kept = 0;
  for (Entry& e : live_) {
    if (Marker::is_marked(heap, e.target)) {
      if (&live_[kept] != &e) live_[kept] = std::move(e);
      ++kept;
    } else {
      pending_.push_back({e.id, std::move(e.callback)});
      ++queued;
    }
  }
  live_.resize(kept);
  return queued;
}

size_t FinalizerTable::run_pending(size_t max) {
  size_t ran = 0;
  while (ran < max) {
    std::function<void()> callback;
    {
      MutexLock lock(mu_);
      if (pending_.empty()) break;
      callback = std::move(pending_.front().callback);
      pending_.pop_front();
    }
    ++ran;
    callback();
  }
  return ran;
}

size_t FinalizerTable::pending() const {
  MutexLock lock(mu_);
  return pending_.size();
}

}  // namespace shoal::internal
