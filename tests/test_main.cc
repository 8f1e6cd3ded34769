// googletest main for Shoal's suite.
#include <gtest/gtest.h>

// Conservative stack scanning must see every local variable: ASan's fake stacks
// (detect_stack_use_after_return) would move them off the thread's stack.
extern "C" const char* __asan_default_options() { return "detect_stack_use_after_return=0"; }

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
