// The Chrome trace export: well-formed JSON with one event per pause and phase.
#include <string>

#include "tests/test_support.h"

namespace shoal::test {
namespace {

// A small JSON syntax check: balanced containers outside strings, no trailing commas.
bool looks_like_json(const std::string& s) {
  std::string stack;
  bool in_string = false;
  char prev = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
      continue;
    }
    switch (c) {
      case '"': in_string = true; break;
      case '{': case '[': stack.push_back(c); break;
      case '}': case ']':
        if (stack.empty() || (c == '}' ? '{' : '[') != stack.back() || prev == ',') return false;
        stack.pop_back();
        break;
      default: break;
    }
    if (c != ' ') prev = c;
  }
  return stack.empty() && !in_string;
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

TEST(TraceExportTest, PausesAndPhasesOfBothKindsOfCycle) {
  HeapOptions o;
  o.concurrent_marking = true;
  Heap heap(o);
  MutatorScope attach(heap);
  Ref<Node> keep = make_list(1000);
  heap.collect();
  heap.impl().collector.start_concurrent_cycle_for_testing(internal::current_thread());
  heap.collect();  // waits for the concurrent cycle, then a stop-the-world one
  const std::string json = heap.chrome_trace_json();
  EXPECT_TRUE(looks_like_json(json)) << json;
  EXPECT_EQ(json.rfind("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[", 0), 0u);
  EXPECT_EQ(count(json, "\"name\":\"pause\""), 2u);
  EXPECT_EQ(count(json, "\"name\":\"pause (initial)\""), 1u);
  EXPECT_EQ(count(json, "\"name\":\"pause (final)\""), 1u);
  EXPECT_EQ(count(json, "\"name\":\"mark (concurrent)\""), 1u);
  EXPECT_EQ(count(json, "\"ph\":\"X\""), 2u * 4 + 6);
  EXPECT_EQ(count(json, "\"cause\":\"explicit\""), 2u * 4);
  EXPECT_EQ(list_length_checked(keep), 1000u);
  // Cycle records carry consistent timestamps: phases inside their pause.
  for (const CycleRecord& c : heap.stats().recent) {
    const uint64_t pause_start = c.concurrent ? c.final_start_ns : c.start_ns;
    const uint64_t pause_len = c.concurrent ? c.final_pause_ns : c.pause_ns;
    EXPECT_GE(c.mark_start_ns, c.concurrent ? c.final_start_ns : c.start_ns);
    EXPECT_LE(c.sweep_start_ns + c.sweep_ns, pause_start + pause_len);
    if (c.concurrent) {
      EXPECT_GE(c.final_start_ns, c.start_ns + c.initial_pause_ns);
    }
  }
}

TEST(TraceExportTest, EmptyHeapGivesAnEmptyTrace) {
  Heap heap;
  const std::string json = heap.chrome_trace_json();
  EXPECT_TRUE(looks_like_json(json));
  EXPECT_EQ(count(json, "\"ph\":\"X\""), 0u);
}

}  // namespace
}  // namespace shoal::test
