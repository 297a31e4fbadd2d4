// Reading the HSM PIN.
#include "xks/hsm/pin.h"

#include <cstdlib>
#include <fstream>
#include <iterator>

namespace xks::hsm {

HsmResult<std::string> read_pin(const PinSource& source) {
  auto failure = [&](std::string reason) {
    return tl::unexpected(HsmError{HsmErrorKind::kLoginFailed, CKR_OK, std::move(reason)});
  };
  std::string pin;
  if (source.from == PinSource::From::kEnvironment) {
    const char* value = std::getenv(source.name.c_str());
    if (value == nullptr)
      return failure("HSM PIN variable " + source.name + " is not set");
    pin = value;
  } else {
    std::ifstream file(source.name, std::ios::binary);
    if (!file)
      return failure("cannot read HSM PIN file " + source.name);
    pin.assign(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
    if (pin.ends_with('\n'))
      pin.pop_back();
    if (pin.ends_with('\r'))
      pin.pop_back();
  }
  if (pin.empty())
    return failure("HSM PIN from " + source.name + " is empty");
  return pin;
}

}  // namespace xks::hsm
