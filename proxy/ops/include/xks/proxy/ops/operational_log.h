// The operational log (spdlog on standard error): text for people, or one JSON object a line
// for log pipelines. It never carries request data: that is the audit log's job.
#pragma once

#include <string>

#include "xks/proxy/config/ops_config.h"

namespace xks::proxy {

void configure_operational_log(const LogConfig& config);
// A reload's: "trace", "debug", "info", "warn" or "error" (as LogConfig::level).
void set_operational_log_level(const std::string& level);

}  // namespace xks::proxy
