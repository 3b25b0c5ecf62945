// Locating ../shared/vectors. A user's fresh clone has none: those tests skip with a visible
// message. Under CI=true a missing folder is a failure, never a silent skip.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace attestnet::test {

inline std::filesystem::path vectors_dir() {
  return ATTESTNET_VECTORS_DIR;
}

inline bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci && std::string(ci) == "true";
}

inline std::vector<uint8_t> read_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline nlohmann::json load_json(const std::filesystem::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

}  // namespace attestnet::test

#define REQUIRE_VECTORS()                                                                     \
  do {                                                                                        \
    if (!std::filesystem::exists(::attestnet::test::vectors_dir())) {                         \
      if (::attestnet::test::in_ci()) {                                                       \
        FAIL() << "CI=true but the shared vectors are missing at "                            \
               << ::attestnet::test::vectors_dir();                                           \
      }                                                                                       \
      GTEST_SKIP() << "SKIPPED: shared test vectors not found at "                            \
                   << ::attestnet::test::vectors_dir() << " (they live beside the checkout)"; \
    }                                                                                         \
  } while (0)
