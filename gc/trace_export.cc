// The GC event trace as Chrome trace-event JSON (viewable in Perfetto / chrome://tracing).
//
// Built from the collector's cycle log (the last Collector::kCycleLogSize CycleRecords):
// every pause becomes a complete ("X") event on the "pauses" track, with its phases
// (time-to-safepoint, in-pause marking, sweeping) nested under it; concurrent marking
// goes on the "marker thread" track between a cycle's two pauses. Timestamps are
// microseconds since the heap was created. The records are copied under the stats lock,
// so a trace is a consistent snapshot even while collections run.
#include <cinttypes>
#include <cstdio>
#include <string>

#include "heap/heap_impl.h"

namespace shoal {

namespace {

constexpr int kPauseTrack = 1;
constexpr int kMarkerTrack = 2;

class TraceWriter {
 public:
  TraceWriter() {
    out_ = "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[";
    thread_name(kPauseTrack, "pauses (stop-the-world)");
    thread_name(kMarkerTrack, "marker thread (concurrent)");
  }

  void event(const char* name, uint64_t start_ns, uint64_t dur_ns, int track, const CycleRecord& c) {
    char buf[384];
    std::snprintf(buf, sizeof buf,
                  "%s{\"name\":\"%s\",\"cat\":\"gc\",\"ph\":\"X\",\"pid\":1,\"tid\":%d,\"ts\":%.3f,\"dur\":%.3f,"
                  "\"args\":{\"cycle\":%" PRIu64 ",\"cause\":\"%s\",\"objects_marked\":%zu,\"live_bytes\":%zu,"
                  "\"freed_bytes\":%zu}}",
                  separator(), name, track, static_cast<double>(start_ns) / 1e3, static_cast<double>(dur_ns) / 1e3,
                  c.index, c.cause, c.objects_marked, c.live_bytes, c.freed_bytes);
    out_ += buf;
  }

  std::string finish() {
    out_ += "]}";
    return std::move(out_);
  }

 private:
  void thread_name(int track, const char* name) {
    char buf[160];
    std::snprintf(buf, sizeof buf,
                  "%s{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":%d,\"args\":{\"name\":\"%s\"}}",
                  separator(), track, name);
    out_ += buf;
  }
  const char* separator() {
    const char* s = first_ ? "" : ",";
    first_ = false;
    return s;
  }

  std::string out_;
  bool first_ = true;
};

}  // namespace

std::string Heap::chrome_trace_json() const {
  TraceWriter w;
  for (const CycleRecord& c : impl_->collector.cycle_log()) {
    if (!c.concurrent) {
      w.event("pause", c.start_ns, c.pause_ns, kPauseTrack, c);
      w.event("safepoint", c.start_ns, c.time_to_safepoint_ns, kPauseTrack, c);
      w.event("mark", c.mark_start_ns, c.mark_ns, kPauseTrack, c);
      w.event("sweep", c.sweep_start_ns, c.sweep_ns, kPauseTrack, c);
    } else {
      w.event("pause (initial)", c.start_ns, c.initial_pause_ns, kPauseTrack, c);
      w.event("safepoint", c.start_ns, c.time_to_safepoint_ns, kPauseTrack, c);
      w.event("mark (concurrent)", c.concurrent_mark_start_ns, c.concurrent_mark_ns, kMarkerTrack, c);
      w.event("pause (final)", c.final_start_ns, c.final_pause_ns, kPauseTrack, c);
      w.event("mark (final)", c.mark_start_ns, c.sweep_start_ns - c.mark_start_ns, kPauseTrack, c);
      w.event("sweep", c.sweep_start_ns, c.sweep_ns, kPauseTrack, c);
    }
  }
  return w.finish();
}

}  // namespace shoal
