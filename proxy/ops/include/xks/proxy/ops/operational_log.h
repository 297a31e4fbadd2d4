// The operational log (spdlog on standard error): text for people, or one JSON object a line
// for log pipelines. It never carries request data: that is the audit log's job.
#pragma once

#include "xks/proxy/config/ops_config.h"

namespace xks::proxy {

void configure_operational_log(const LogConfig& config);

}  // namespace xks::proxy
