// Strict base64: RFC 4648's test vectors and every lenient form a sloppy decoder would accept.
#include "xks/wire/base64.h"

#include <gtest/gtest.h>

namespace xks::wire {
namespace {

std::vector<std::uint8_t> bytes(std::string_view text) {
  return {text.begin(), text.end()};
}

TEST(Base64, Rfc4648Vectors) {
  const std::pair<std::string_view, std::string_view> kVectors[] = {{"", ""},
                                                                    {"f", "Zg=="},
                                                                    {"fo", "Zm8="},
                                                                    {"foo", "Zm9v"},
                                                                    {"foob", "Zm9vYg=="},
                                                                    {"fooba", "Zm9vYmE="},
                                                                    {"foobar", "Zm9vYmFy"}};
  for (auto [plain, encoded] : kVectors) {
    EXPECT_EQ(base64_encode(bytes(plain)), encoded);
    auto decoded = base64_decode(encoded);
    ASSERT_TRUE(decoded.has_value()) << encoded;
    EXPECT_EQ(*decoded, bytes(plain));
  }
}

TEST(Base64, RoundTripsEveryByte) {
  std::vector<std::uint8_t> all(256);
  for (int i = 0; i < 256; ++i)
    all[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(i);
  for (std::size_t length = 0; length <= all.size(); length += 17) {
    std::vector<std::uint8_t> part(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(length));
    EXPECT_EQ(base64_decode(base64_encode(part)), part);
  }
}

TEST(Base64, RejectsLenientForms) {
  for (std::string_view bad : {"Zg", "Zg=", "Zm8", "Zh==", "Zm9=", "Zm9v\n", " Zm9v", "Zm9v ",
                               "Zm 9v", "Zm9v====", "Zg===", "=Zm9", "Zm=v",
                               "Zm9v-_8=", "Zm9v_w==", "====", "Zg==Zg==", "Zm9v\r\n"}) {
    EXPECT_FALSE(base64_decode(bad).has_value()) << '"' << bad << '"';
  }
}

}  // namespace
}  // namespace xks::wire
