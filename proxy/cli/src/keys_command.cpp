// The `keys` commands: they open the HSM token(s) named on the command line or in the proxy's
// configuration, create, rotate, retire, disable, enable or list AES keys, and print what they
// did. PINs never appear on the command line or in output.
#include "keys_command.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <array>
#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>

#include "control_commands.h"
#include "xks/hsm/backend.h"
#include "xks/hsm/key_admin.h"
#include "xks/hsm/pin.h"
#include "xks/hsm/pkcs11_module.h"
#include "xks/proxy/config/config.h"

namespace xks::proxy {

namespace {

struct TokenOptions {
  std::string config;
  std::string backend;
  hsm::ModuleSpec module{"/usr/lib/softhsm/libsofthsm2.so", ""};
  std::string token_label;
  std::string token_serial;
  std::string slot_id;
  std::string pin_file;
  std::string pin_env;
};

void add_token_options(CLI::App& command, TokenOptions& options) {
  auto* config = command.add_option(
      "--config", options.config,
      "The proxy's configuration: its HSMs (every one of a fleet), tokens and PIN sources; the "
      "proxy serving it is told to read its keys again");
  command.add_option("--backend", options.backend, "With --config: only the HSM of this name")
      ->needs(config);
  command.add_option("--module", options.module.path, "PKCS#11 module")->capture_default_str();
  command.add_option("--init-reserved", options.module.init_reserved,
                     "The module's initialisation parameters (C_Initialize pReserved, as "
                     "p11-kit's x-init-reserved), e.g. NSS softoken's configdir=...");
  auto* label = command.add_option("--token-label", options.token_label, "Token label");
  auto* serial = command.add_option("--token-serial", options.token_serial, "Token serial");
  auto* slot = command.add_option("--slot-id", options.slot_id, "Slot id");
  label->excludes(serial, slot, config);
  serial->excludes(slot, config);
  slot->excludes(config);
  auto* pin_file = command.add_option("--pin-file", options.pin_file, "File holding the PIN");
  auto* pin_env = command.add_option("--pin-env", options.pin_env, "Variable holding the PIN");
  pin_file->excludes(pin_env, config);
  pin_env->excludes(config);
}

struct NamedToken {
  std::string name;  // the HSM's name in the configuration ("" without one)
  hsm::OpenToken token;
  // Whether the token keeps the keys' encryption counts (its vendor profile's
  // token_data_objects; assumed without a configuration).
  bool keeps_counts = true;
};

// The tokens a command acts on; prints the reason and returns nullopt on failure.
std::optional<std::vector<NamedToken>> open_tokens(const TokenOptions& options) {
  auto fail = [](const std::string& reason) {
    std::cerr << "xks-proxy keys: " << reason << "\n";
    return std::nullopt;
  };
  std::vector<NamedToken> tokens;
  if (!options.config.empty()) {
    auto config = load_config(options.config);
    if (!config)
      return fail(config.error());
    for (const HsmConfig& hsm_config : config->hsm) {
      if (!options.backend.empty() && hsm_config.name != options.backend)
        continue;
      auto opened = hsm::open_token(hsm_config.module, hsm_config.token, hsm_config.pin);
      if (!opened)
        return fail((hsm_config.name.empty() ? "" : hsm_config.name + ": ") +
                    opened.error().message);
      tokens.push_back(
          {hsm_config.name, std::move(*opened), hsm_config.profile.token_data_objects});
    }
    if (tokens.empty())
      return fail("no HSM named '" + options.backend + "' in " + options.config);
    return tokens;
  }
  hsm::TokenSelector selector;
  if (!options.token_label.empty()) {
    selector = {hsm::TokenSelector::By::kLabel, options.token_label};
  } else if (!options.token_serial.empty()) {
    selector = {hsm::TokenSelector::By::kSerial, options.token_serial};
  } else if (!options.slot_id.empty()) {
    selector = {hsm::TokenSelector::By::kSlotId, options.slot_id};
  } else {
    return fail("name the token with --config, --token-label, --token-serial or --slot-id");
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
  tokens.push_back({"", std::move(*opened)});
  return tokens;
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

std::string protection_text(const hsm::KeyInfo& info) {
  std::string text = info.sensitive ? "sensitive" : "NOT-SENSITIVE";
  text += info.extractable ? ",EXTRACTABLE" : ",not-extractable";
  if (info.always_sensitive)
    text += ",always-sensitive";
  if (info.never_extractable)
    text += ",never-extractable";
  return text;
}

using Material = std::optional<std::span<const std::uint8_t, 32>>;

// A change made on every token of the command.
struct KeyChange {
  std::string what;  // the subcommand, for messages
  // Once, with every token, before any change (rotation: the version number).
  std::function<hsm::HsmResult<void>(const std::vector<NamedToken>&)> prepare;
  std::function<hsm::HsmResult<std::string>(const hsm::OpenToken&, Material)> apply;
  // Undoes `apply` on a token, when a later token failed (may be empty: nothing to undo).
  std::function<hsm::HsmResult<void>(const hsm::OpenToken&)> undo;
  bool makes_material = false;  // a fleet gets the same new key material in every HSM
};

// Applies `change` to every token, all or none (as far as undo can); tells the proxy serving
// --config to read its keys again.
int change_keys(const TokenOptions& options, const KeyChange& change) {
  auto tokens = open_tokens(options);
  if (!tokens)
    return 1;
  auto fail = [&](const std::string& where, const std::string& message) {
    std::cerr << "xks-proxy keys " << change.what << ": " << where << message << "\n";
    return 1;
  };
  if (change.prepare) {
    if (auto prepared = change.prepare(*tokens); !prepared)
      return fail("", prepared.error().message);
  }
  std::array<std::uint8_t, 32> material{};
  struct Wipe {
    std::array<std::uint8_t, 32>& bytes;
    ~Wipe() { OPENSSL_cleanse(bytes.data(), bytes.size()); }
  } wipe{material};
  Material shared;
  if (change.makes_material && tokens->size() > 1) {
    if (RAND_bytes(material.data(), static_cast<int>(material.size())) != 1)
      return fail("", "RAND_bytes failed");
    shared = std::span<const std::uint8_t, 32>(material);
  }
  int exit_code = 0;
  for (std::size_t i = 0; i < tokens->size(); ++i) {
    const NamedToken& token = (*tokens)[i];
    std::string where = token.name.empty() ? "" : token.name + ": ";
    auto done = change.apply(token.token, shared);
    if (done) {
      std::cout << where << *done << "\n";
      continue;
    }
    exit_code = fail(where, done.error().message);
    // The HSMs of a fleet must not disagree: what was done on the others is undone.
    for (std::size_t j = 0; j < i && change.undo; ++j) {
      const NamedToken& earlier = (*tokens)[j];
      auto undone = change.undo(earlier.token);
      std::cerr << "  " << earlier.name << ": "
                << (undone ? "undone" : "NOT undone (" + undone.error().message + "): fix by hand")
                << "\n";
    }
    break;
  }
  if (!options.config.empty())
    tell_serving_proxies_keys_changed(options.config);
  return exit_code;
}

}  // namespace

void add_keys_command(CLI::App& app, int& exit_code) {
  CLI::App* keys = app.add_subcommand(
      "keys", "Create, rotate, retire, disable, enable and list AES keys on the HSM token(s)");
  keys->require_subcommand(1);

  auto create_options = std::make_shared<TokenOptions>();
  auto label = std::make_shared<std::string>();
  auto usage = std::make_shared<std::string>("encrypt,decrypt");
  CLI::App* create =
      keys->add_subcommand("create", "Create an AES-256 key (sensitive, never extractable)");
  add_token_options(*create, *create_options);
  create->add_option("--label", *label, "The key's label: its XKS external key id")->required();
  create->add_option("--usage", *usage, "encrypt,decrypt | encrypt | decrypt | none")
      ->capture_default_str();
  create->callback([=, &exit_code] {
    auto requested = hsm::parse_key_usage(*usage);
    if (!requested) {
      std::cerr << "xks-proxy keys create: --usage must be encrypt,decrypt, encrypt, decrypt "
                   "or none\n";
      exit_code = 2;
      return;
    }
    exit_code =
        change_keys(*create_options,
                    {.what = "create",
                     .prepare = {},
                     .apply = [&](const hsm::OpenToken& token,
                                  Material material) -> hsm::HsmResult<std::string> {
                       auto created = hsm::create_aes_key(*token.module, token.token.slot_id,
                                                          token.pin, *label, *requested, material);
                       if (!created)
                         return tl::unexpected(created.error());
                       return "created AES-256 key " + *label + " (" + usage_text(*created) + ")";
                     },
                     .undo = {},
                     .makes_material = true});
  });

  auto key = std::make_shared<std::string>();
  auto rotate_options = std::make_shared<TokenOptions>();
  CLI::App* rotate = keys->add_subcommand(
      "rotate",
      "Make a new version of a key, which Encrypt uses from now on (older versions "
      "still decrypt what they encrypted)");
  add_token_options(*rotate, *rotate_options);
  rotate->add_option("key", *key, "The external key id")->required();
  rotate->callback([=, &exit_code] {
    std::uint32_t target = 0;  // one above the newest version on any of the HSMs
    exit_code =
        change_keys(*rotate_options,
                    {.what = "rotate",
                     .prepare = [&](const std::vector<NamedToken>& tokens) -> hsm::HsmResult<void> {
                       for (const NamedToken& token : tokens) {
                         auto newest = hsm::newest_version(
                             *token.token.module, token.token.token.slot_id, token.token.pin, *key);
                         if (!newest)
                           return tl::unexpected(newest.error());
                         target = std::max(target, *newest + 1);
                       }
                       return {};
                     },
                     .apply = [&](const hsm::OpenToken& token,
                                  Material material) -> hsm::HsmResult<std::string> {
                       auto made = hsm::rotate_key(*token.module, token.token.slot_id, token.pin,
                                                   *key, target, material);
                       if (!made)
                         return tl::unexpected(made.error());
                       return "key " + *key + ": version " + std::to_string(made->version) +
                              " made; Encrypt uses it from now on";
                     },
                     .undo =
                         [&](const hsm::OpenToken& token) {
                           return hsm::destroy_key_version(*token.module, token.token.slot_id,
                                                           token.pin, *key, target);
                         },
                     .makes_material = true});
  });

  auto version = std::make_shared<std::uint32_t>(0);
  auto retire_options = std::make_shared<TokenOptions>();
  CLI::App* retire = keys->add_subcommand(
      "retire", "Make a version decrypt-only (Encrypt uses the newest version still active)");
  add_token_options(*retire, *retire_options);
  retire->add_option("key", *key, "The external key id")->required();
  retire->add_option("--version", *version, "The version to retire")->required();
  retire->callback([=, &exit_code] {
    exit_code = change_keys(
        *retire_options,
        {.what = "retire",
         .prepare = {},
         .apply = [&](const hsm::OpenToken& token, Material) -> hsm::HsmResult<std::string> {
           auto done = hsm::set_version_encrypt(*token.module, token.token.slot_id, token.pin, *key,
                                                *version, false);
           if (!done)
             return tl::unexpected(done.error());
           return "key " + *key + ": version " + std::to_string(*version) + " only decrypts now";
         },
         .undo =
             [&](const hsm::OpenToken& token) {
               return hsm::set_version_encrypt(*token.module, token.token.slot_id, token.pin, *key,
                                               *version, true);
             },
         .makes_material = false});
  });

  for (bool disable : {true, false}) {
    auto options = std::make_shared<TokenOptions>();
    CLI::App* command = keys->add_subcommand(
        disable ? "disable" : "enable",
        disable ? "Disable a key: GetKeyMetadata says DISABLED, Encrypt and Decrypt answer "
                  "InvalidStateException"
                : "Enable a disabled key again");
    add_token_options(*command, *options);
    command->add_option("key", *key, "The external key id")->required();
    command->callback([=, &exit_code] {
      auto set = [=](const hsm::OpenToken& token, bool disabled) {
        return hsm::set_key_disabled(*token.module, token.token.slot_id, token.pin, *key, disabled);
      };
      exit_code = change_keys(
          *options,
          {.what = disable ? "disable" : "enable",
           .prepare = {},
           .apply = [&](const hsm::OpenToken& token, Material) -> hsm::HsmResult<std::string> {
             if (auto done = set(token, disable); !done)
               return tl::unexpected(done.error());
             return "key " + *key + (disable ? " disabled" : " enabled");
           },
           .undo = [&](const hsm::OpenToken& token) { return set(token, !disable); },
           .makes_material = false});
    });
  }

  auto list_options = std::make_shared<TokenOptions>();
  CLI::App* list =
      keys->add_subcommand("list", "List secret keys with their versions, states and protection");
  add_token_options(*list, *list_options);
  list->callback([=, &exit_code] {
    exit_code = 1;
    auto tokens = open_tokens(*list_options);
    if (!tokens)
      return;
    bool ambiguous = false;
    for (const NamedToken& token : *tokens) {
      auto listing =
          hsm::list_keys(*token.token.module, token.token.token.slot_id, token.token.pin);
      if (!listing) {
        std::cerr << "xks-proxy keys list: " << listing.error().message << "\n";
        return;
      }
      if (!token.name.empty())
        std::cout << "HSM " << token.name << ":\n";
      std::cout << std::left << std::setw(28) << "KEY" << std::setw(9) << "VERSION" << std::setw(14)
                << "STATE" << std::setw(10) << "TYPE" << std::setw(40) << "USAGE" << std::setw(12)
                << "CREATED" << std::setw(14) << "ENCRYPTIONS"
                << "PROTECTION\n";
      for (const auto& entry : *listing) {
        bool disabled = std::any_of(entry.versions.begin(), entry.versions.end(),
                                    [](const hsm::KeyInfo& v) { return v.disabled; });
        ambiguous = ambiguous || entry.ambiguous;
        for (const hsm::KeyInfo& info : entry.versions) {
          std::string state = entry.ambiguous ? "DUPLICATE"
                              : disabled      ? "disabled"
                                              : std::string(hsm::version_state(info));
          std::cout << std::setw(28) << entry.label << std::setw(9) << info.version << std::setw(14)
                    << state << std::setw(10) << (info.is_aes_256() ? "AES-256" : "other")
                    << std::setw(40) << usage_text(info) << std::setw(12)
                    << (info.created.empty() ? "-" : info.created) << std::setw(14)
                    << (token.keeps_counts ? std::to_string(info.encryptions) : "not kept")
                    << protection_text(info) << "\n";
        }
        for (const hsm::KeyInfo& info : entry.versions) {
          if (info.encryptions >= hsm::kEncryptionWarning) {
            std::cout << "  " << entry.label << " version " << info.version << ": "
                      << info.encryptions
                      << " encryptions, near the 2^32 an AES-GCM key is safe for: rotate it "
                         "(xks-proxy keys rotate "
                      << entry.label << ")\n";
          }
        }
        if (entry.ambiguous) {
          std::cout << "  " << entry.label
                    << ": two keys share a version: it cannot be used until one is removed\n";
        }
      }
    }
    exit_code = ambiguous ? 3 : 0;
  });
}

}  // namespace xks::proxy
