// Edits of the configuration file that commands make for the operator (the kill switch), so
// that nobody edits TOML by hand in an emergency. The text is changed line by line: comments,
// order and everything else stay as they were.
#pragma once

#include <string>
#include <string_view>
#include <tl/expected.hpp>

#include "xks/proxy/config/config.h"

namespace xks::proxy {

// `text` with the kill switch of the key store whose prefix is `prefix` set to `block`: its
// blocked, blocked_by, blocked_at and blocked_reason lines are replaced by new ones right after
// its [[keystore]] line (none when unblocked). An error when `text` does not parse, names no
// such key store, or holds one of those keys on several lines.
tl::expected<std::string, std::string> with_keystore_block(std::string_view text,
                                                           const std::string& source,
                                                           const std::string& prefix,
                                                           const BlockConfig& block);

}  // namespace xks::proxy
