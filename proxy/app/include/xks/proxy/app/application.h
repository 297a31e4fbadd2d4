// The XKS proxy as the transport serves it: requests go to the XKS service on the HSM
// executor, with the request deadline starting when the request is handed over.
#pragma once

#include "xks/proxy/transport/application.h"

namespace xks::proxy {

class Runtime;

Application xks_application(Runtime& runtime);

}  // namespace xks::proxy
