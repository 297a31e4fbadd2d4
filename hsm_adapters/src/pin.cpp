// Reading the HSM PIN.
#include "xks/hsm/pin.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace xks::hsm {

void wipe(std::string& secret) {
  explicit_bzero(secret.data(), secret.capacity());
  secret.clear();
}

HsmResult<std::string> read_pin(const PinSource& source) {
  auto failure = [&](std::string reason) {
    return tl::unexpected(HsmError{HsmErrorKind::kLoginFailed, CKR_OK, std::move(reason)});
  };
  std::string pin;
  if (source.from == PinSource::From::kEnvironment && !source.value.empty()) {
    pin = source.value;
  } else if (source.from == PinSource::From::kEnvironment) {
    const char* value = std::getenv(source.name.c_str());
    if (value == nullptr)
      return failure("HSM PIN variable " + source.name + " is not set");
    pin = value;
  } else {
    int fd = ::open(source.name.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      return failure("cannot read HSM PIN file " + source.name);
    std::array<char, kMaxPinBytes + 2> buffer{};  // room to see a PIN that is too long
    std::size_t length = 0;
    while (length < buffer.size()) {
      ssize_t got = ::read(fd, buffer.data() + length, buffer.size() - length);
      if (got < 0 && errno == EINTR)
        continue;
      if (got <= 0)
        break;
      length += static_cast<std::size_t>(got);
    }
    ::close(fd);
    if (length > 0 && buffer[length - 1] == '\n')
      --length;
    if (length > 0 && buffer[length - 1] == '\r')
      --length;
    if (length <= kMaxPinBytes)
      pin.assign(buffer.data(), length);
    explicit_bzero(buffer.data(), buffer.size());
    if (length > kMaxPinBytes)
      return failure("HSM PIN file " + source.name + " holds more than 255 bytes");
  }
  if (pin.empty())
    return failure("HSM PIN from " + source.name + " is empty");
  return pin;
}

}  // namespace xks::hsm
