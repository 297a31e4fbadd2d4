// Fuzz target: xks-load's parsers on arbitrary bytes — kms-console.json, the scenario TOML, and
// the judging of a proxy's answers (JSON, base64, CDIV) in verify mode; the first byte picks.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "run_inputs.h"
#include "workload.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace xks::load;
  if (size == 0)
    return 0;
  std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 4) {
    case 0:
      (void)parse_kms_console(input);
      break;
    case 1:
      (void)parse_scenario(input);
      break;
    default: {
      PreparedRequest request;
      request.operation = data[0] % 4 == 2 ? Operation::kEncrypt : Operation::kDecrypt;
      request.plaintext = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
      request.aad = "YWFk";
      request.body = R"({"ciphertextDataIntegrityValueAlgorithm":"SHA_256"})";
      (void)judge(request, 200, input, true);
      (void)judge(request, 400, input, false);
      (void)seal_from_answer(request, input);
    }
  }
  return 0;
}
