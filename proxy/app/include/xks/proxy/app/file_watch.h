// Reloading when files change ([server] reload_on_change): the configuration file, the TLS
// files and the SigV4 secret files are watched with inotify, through their directories, so
// that the ways files get replaced are all seen: written in place, renamed over (editors,
// `xks-proxy keystore`), or swapped under a `..data` symlink (Kubernetes' mounted ConfigMaps
// and Secrets, cert-manager renewals).
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace xks::proxy {

class FileWatch {
 public:
  // Calls `changed` on a thread of its own once a watched file changed and then stayed
  // unchanged for kSettle (a file being written in several steps is read once), and asks
  // `paths` again afterwards (the configuration may name other files now).
  FileWatch(std::function<std::vector<std::string>()> paths, std::function<void()> changed);
  ~FileWatch();  // stops watching
  FileWatch(const FileWatch&) = delete;
  FileWatch& operator=(const FileWatch&) = delete;

  static constexpr std::chrono::milliseconds kSettle{200};

 private:
  void run(std::stop_token stop);

  std::function<std::vector<std::string>()> paths_;
  std::function<void()> changed_;
  int fd_;
  std::jthread thread_;  // last: stopped first
};

}  // namespace xks::proxy
