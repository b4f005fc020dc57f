// Test helpers: where the test models and the repository live.
//
// Test models are fetched by scripts/setup into .cache/models. When one is
// missing, a test skips with a message -- unless FORMIGA_REQUIRE_MODELS=1 (set
// by scripts/test, hence in CI), where a missing model is a failure.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace formiga::testing {

inline std::filesystem::path SourceDir() {
  if (const char* env = std::getenv("FORMIGA_SOURCE_DIR")) return env;
#ifdef FORMIGA_SOURCE_DIR
  return FORMIGA_SOURCE_DIR;
#else
  return ".";
#endif
}

inline std::filesystem::path ModelsDir() {
  if (const char* env = std::getenv("FORMIGA_MODELS_DIR")) return env;
  return SourceDir() / ".cache" / "models";
}

inline const char* kSmolLM2 = "SmolLM2-135M-Instruct.Q4_1.gguf";
inline const char* kGemma3 = "gemma-3-270m-q4_k_m.gguf";

inline bool ModelsRequired() {
  const char* env = std::getenv("FORMIGA_REQUIRE_MODELS");
  return env != nullptr && std::string(env) == "1";
}

}  // namespace formiga::testing

// Sets `var` (a std::string) to the model's path, or skips/fails the test.
#define FORMIGA_REQUIRE_MODEL(var, file)                                              \
  std::string var = (::formiga::testing::ModelsDir() / (file)).string();              \
  if (!std::filesystem::exists(var)) {                                                \
    if (::formiga::testing::ModelsRequired()) {                                       \
      FAIL() << "test model missing: " << var << " (run scripts/setup)";              \
    } else {                                                                          \
      GTEST_SKIP() << "test model missing: " << var << " (run scripts/setup)";        \
    }                                                                                 \
  }
