// Strict base64 through OpenSSL's block codec, with the checks it leaves out.
#include "xks/wire/base64.h"

#include <openssl/evp.h>

namespace xks::wire {

namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int value_of(char c) {
  std::size_t at = kAlphabet.find(c);
  return at == std::string_view::npos ? -1 : static_cast<int>(at);
}

}  // namespace

std::optional<std::vector<std::uint8_t>> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0)
    return std::nullopt;
  std::size_t padding = 0;
  if (text.ends_with("==")) {
    padding = 2;
  } else if (text.ends_with('=')) {
    padding = 1;
  }
  std::string_view body = text.substr(0, text.size() - padding);
  for (char c : body) {
    if (value_of(c) < 0)
      return std::nullopt;
  }
  // The bits after the last full byte must be zero, or two encodings decode alike.
  if (padding == 2 && (value_of(body.back()) & 0x0f) != 0)
    return std::nullopt;
  if (padding == 1 && (value_of(body.back()) & 0x03) != 0)
    return std::nullopt;

  std::vector<std::uint8_t> out(text.size() / 4 * 3);
  if (!text.empty()) {
    int written = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()),
                                  static_cast<int>(text.size()));
    if (written < 0)
      return std::nullopt;
  }
  out.resize(out.size() - padding);
  return out;
}

std::string base64_encode(std::span<const std::uint8_t> bytes) {
  std::string out((bytes.size() + 2) / 3 * 4, '\0');
  if (!bytes.empty()) {
    EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes.data(),
                    static_cast<int>(bytes.size()));
  }
  return out;
}

}  // namespace xks::wire
