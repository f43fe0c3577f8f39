// GoogleTest entry point: the same runtime set-up as the rlhf binary (BLAS kernel, threads), so
// tests exercise what users run. RLHF_TEST_DEVICE=cuda runs the suite on a GPU.
#include <gtest/gtest.h>

#include <cstdlib>

#include "core/runtime.h"

int main(int argc, char** argv) {
  rlhf::fix_blas_kernel_or_reexec(argv);
  ::testing::InitGoogleTest(&argc, argv);
  rlhf::RuntimeOptions ro;
  if (const char* d = std::getenv("RLHF_TEST_DEVICE")) ro.device = d;
  rlhf::init_runtime(ro);
  return RUN_ALL_TESTS();
}
