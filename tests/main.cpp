// GoogleTest entry point: the same runtime set-up as the rlhf binary (BLAS kernel, threads), so
// tests exercise what users run. RLHF_TEST_DEVICE=cuda runs the suite on a GPU
// (the rlhf processes the CLI tests start inherit it as RLHF_DEVICE).
#include <gtest/gtest.h>

#include <cstdlib>

#include "core/runtime.h"

int main(int argc, char** argv) {
  rlhf::fix_blas_kernel_or_reexec(argv);
  ::testing::InitGoogleTest(&argc, argv);
  rlhf::RuntimeOptions ro;
  if (const char* d = std::getenv("RLHF_TEST_DEVICE")) {
    ro.device = d;
    setenv("RLHF_DEVICE", d, 1);  // the CLI tests' rlhf processes run there too
  }
  rlhf::init_runtime(ro);
  return RUN_ALL_TESTS();
}
