// What the proxy does on a signal, while it serves: SIGTERM and SIGINT drain and stop it, SIGHUP
// reopens the audit log (after logrotate moved it) and reloads the configuration. The handlers run
// on a thread of this object's own, never inside a signal handler.
#pragma once

#include <functional>
#include <memory>

namespace xks::proxy {

class SignalHandling {
 public:
  SignalHandling(std::function<void()> on_stop, std::function<void()> on_hangup);
  ~SignalHandling();  // stops listening: the signals' default actions apply again
  SignalHandling(const SignalHandling&) = delete;
  SignalHandling& operator=(const SignalHandling&) = delete;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace xks::proxy
