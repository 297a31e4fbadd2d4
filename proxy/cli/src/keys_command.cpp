// The `keys` commands: they open the module and token named on the command line, create or
// list AES keys, and print what they did. PINs never appear on the command line or in output.
#include "keys_command.h"

#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>

#include "xks/hsm/backend.h"
#include "xks/hsm/key_admin.h"
#include "xks/hsm/pin.h"
#include "xks/hsm/pkcs11_module.h"

namespace xks::proxy {

namespace {

struct TokenOptions {
  std::string module = "/usr/lib/softhsm/libsofthsm2.so";
  std::string token_label;
  std::string token_serial;
  std::string slot_id;
  std::string pin_file;
  std::string pin_env;
};

void add_token_options(CLI::App& command, TokenOptions& options) {
  command.add_option("--module", options.module, "PKCS#11 module")->capture_default_str();
  auto* label = command.add_option("--token-label", options.token_label, "Token label");
  auto* serial = command.add_option("--token-serial", options.token_serial, "Token serial");
  auto* slot = command.add_option("--slot-id", options.slot_id, "Slot id");
  label->excludes(serial, slot);
  serial->excludes(slot);
  auto* pin_file = command.add_option("--pin-file", options.pin_file, "File holding the PIN");
  auto* pin_env = command.add_option("--pin-env", options.pin_env, "Variable holding the PIN");
  pin_file->excludes(pin_env);
}

// Prints the reason and returns nullopt on failure.
std::optional<hsm::OpenToken> open_token(const TokenOptions& options) {
  auto fail = [](const std::string& reason) {
    std::cerr << "xks-proxy keys: " << reason << "\n";
    return std::nullopt;
  };
  hsm::TokenSelector selector;
  if (!options.token_label.empty()) {
    selector = {hsm::TokenSelector::By::kLabel, options.token_label};
  } else if (!options.token_serial.empty()) {
    selector = {hsm::TokenSelector::By::kSerial, options.token_serial};
  } else if (!options.slot_id.empty()) {
    selector = {hsm::TokenSelector::By::kSlotId, options.slot_id};
  } else {
    return fail("name the token with --token-label, --token-serial or --slot-id");
  }
  if (options.pin_file.empty() && options.pin_env.empty()) {
    return fail("give the PIN with --pin-file or --pin-env");
  }
  hsm::PinSource pin = options.pin_file.empty()
                           ? hsm::PinSource{hsm::PinSource::From::kEnvironment, options.pin_env, {}}
                           : hsm::PinSource{hsm::PinSource::From::kFile, options.pin_file, {}};
  auto opened = hsm::open_token(options.module, selector, pin);
  if (!opened)
    return fail(opened.error().message);
  return std::move(*opened);
}

std::string usage_text(const hsm::KeyInfo& info) {
  std::string text;
  for (std::string_view usage : info.key_usage()) {
    if (!text.empty())
      text.push_back(',');
    text.append(usage);
  }
  return text.empty() ? "-" : text;
}

}  // namespace

void add_keys_command(CLI::App& app, int& exit_code) {
  CLI::App* keys = app.add_subcommand("keys", "Create and list AES keys on the HSM token");
  keys->require_subcommand(1);

  auto create_options = std::make_shared<TokenOptions>();
  auto label = std::make_shared<std::string>();
  auto usage = std::make_shared<std::string>("encrypt,decrypt");
  CLI::App* create = keys->add_subcommand("create", "Create an AES-256 key");
  add_token_options(*create, *create_options);
  create->add_option("--label", *label, "The key's label: its XKS external key id")->required();
  create->add_option("--usage", *usage, "encrypt,decrypt | encrypt | decrypt | none")
      ->capture_default_str();
  create->callback([=, &exit_code] {
    exit_code = 1;
    auto requested = hsm::parse_key_usage(*usage);
    if (!requested) {
      std::cerr << "xks-proxy keys create: --usage must be encrypt,decrypt, encrypt, decrypt "
                   "or none\n";
      exit_code = 2;
      return;
    }
    auto token = open_token(*create_options);
    if (!token)
      return;
    auto created =
        hsm::create_aes_key(*token->module, token->token.slot_id, token->pin, *label, *requested);
    if (!created) {
      std::cerr << "xks-proxy keys create: " << *label << ": " << created.error().message << "\n";
      return;
    }
    std::cout << "created AES-256 key " << *label << " (" << usage_text(*created) << ")\n";
    exit_code = 0;
  });

  auto list_options = std::make_shared<TokenOptions>();
  CLI::App* list = keys->add_subcommand("list", "List secret keys, flagging duplicate labels");
  add_token_options(*list, *list_options);
  list->callback([=, &exit_code] {
    exit_code = 1;
    auto token = open_token(*list_options);
    if (!token)
      return;
    auto listing = hsm::list_keys(*token->module, token->token.slot_id, token->pin);
    if (!listing) {
      std::cerr << "xks-proxy keys list: " << listing.error().message << "\n";
      return;
    }
    std::cout << std::left << std::setw(32) << "LABEL" << std::setw(10) << "TYPE" << std::setw(18)
              << "USAGE"
              << "NOTE\n";
    bool duplicates = false;
    for (const auto& key : *listing) {
      std::string type = key.info.is_aes_256() ? "AES-256" : "other";
      std::string note = key.copies > 1 ? "DUPLICATE: " + std::to_string(key.copies) +
                                              " keys share this label; it cannot be used"
                                        : "";
      duplicates = duplicates || key.copies > 1;
      std::cout << std::setw(32) << key.label << std::setw(10) << type << std::setw(18)
                << usage_text(key.info) << note << "\n";
    }
    exit_code = duplicates ? 3 : 0;
  });
}

}  // namespace xks::proxy
