// Names of the XKS operations.
#include "xks/wire/operation.h"

namespace xks::wire {

std::string_view operation_name(Operation operation) {
  switch (operation) {
    case Operation::kGetKeyMetadata:
      return "GetKeyMetadata";
    case Operation::kEncrypt:
      return "Encrypt";
    case Operation::kDecrypt:
      return "Decrypt";
    case Operation::kGetHealthStatus:
      return "GetHealthStatus";
  }
  return "Unknown";
}

std::string_view uri_name(Operation operation) {
  switch (operation) {
    case Operation::kGetKeyMetadata:
      return "metadata";
    case Operation::kEncrypt:
      return "encrypt";
    case Operation::kDecrypt:
      return "decrypt";
    case Operation::kGetHealthStatus:
      return "health";
  }
  return "unknown";
}

std::optional<Operation> operation_from_uri_name(std::string_view name) {
  for (Operation operation : kOperations) {
    if (uri_name(operation) == name)
      return operation;
  }
  return std::nullopt;
}

}  // namespace xks::wire
