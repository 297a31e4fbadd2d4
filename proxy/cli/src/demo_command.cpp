// The embedded demo's state directory and start-up.
#include "demo_command.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <span>
#include <stdexcept>
#include <vector>

#include "serve_command.h"
#include "xks/hsm/backend.h"
#include "xks/hsm/key_admin.h"
#include "xks/hsm/pkcs11_module.h"
#include "xks/proxy/cli/credentials.h"
#include "xks/proxy/ops/audit_chain.h"
#include "xks/wire/base64.h"

namespace xks::proxy {

namespace {

namespace fs = std::filesystem;

constexpr const char* kSoftHsmModule = "/usr/lib/softhsm/libsofthsm2.so";
constexpr const char* kNssModule = "libsoftokn3.so";  // from the loader's path, any architecture
constexpr const char* kNssTokenLabel = "NSS Certificate DB";
constexpr const char* kTokenLabel = "xks-demo";
constexpr const char* kHealthKey = "xks-health";
// The demo's keys (those AWS's conformance client uses) and the health key, on every token.
const std::pair<const char*, hsm::KeyUsageRequest> kDemoKeys[] = {
    {"foo", {true, true}},
    {"encrypt_only_key", {true, false}},
    {"decrypt_only_key", {false, true}},
    {"impotent_key", {false, false}},
    {kHealthKey, {true, true}},
};
constexpr const char* kPrefix = "/example";
constexpr const char* kRegion = "us-east-1";
constexpr const char* kKmsClientName = "cks.kms.us-east-1.amazonaws.com";

struct SetupError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string random_string(std::string_view alphabet, std::size_t length) {
  std::vector<unsigned char> bytes(length);
  if (RAND_bytes(bytes.data(), static_cast<int>(length)) != 1)
    throw SetupError("RAND_bytes failed");
  std::string out;
  for (unsigned char byte : bytes)
    out.push_back(alphabet[byte % alphabet.size()]);
  return out;
}

// Writes a file readable by its owner only.
void write_private(const fs::path& path, std::string_view content) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 ||
      ::write(fd, content.data(), content.size()) != static_cast<ssize_t>(content.size())) {
    if (fd >= 0)
      ::close(fd);
    throw SetupError("cannot write " + path.string());
  }
  ::fchmod(fd, 0600);
  ::close(fd);
}

std::string read_file(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

// The secret in `path`, created with `make` the first time.
std::string persistent(const fs::path& path, const std::function<std::string()>& make) {
  if (fs::exists(path))
    return read_file(path);
  std::string value = make();
  write_private(path, value);
  return value;
}

// Runs a program (no shell), its output appended to `log`.
void run(const std::vector<std::string>& argv, const fs::path& log) {
  pid_t child = ::fork();
  if (child == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    std::vector<char*> args;
    for (const auto& arg : argv)
      args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  if (child < 0 || ::waitpid(child, &status, 0) < 0 || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0) {
    throw SetupError(argv[0] + " failed; see " + log.string());
  }
}

std::string token_label(unsigned backend) {
  return backend == 1 ? std::string(kTokenLabel)
                      : std::string(kTokenLabel) + "-" + std::to_string(backend);
}

// One HSM of the demo: a SoftHSM token of its own, or the NSS softoken database.
struct DemoHsm {
  std::string vendor;  // the vendor profile: softhsm or nss
  hsm::ModuleSpec module;
  std::string token_label;
};

DemoHsm demo_hsm(const fs::path& dir, const DemoOptions& options, unsigned backend) {
  if (!options.vendors.empty() && options.vendors[backend - 1] == "nss") {
    std::string database = fs::absolute(dir / "nss").string();
    // Written into NSS's quoted parameters and into a TOML string, unescaped.
    if (database.find_first_of("'\"\\") != std::string::npos)
      throw SetupError("--state-dir for NSS softoken cannot hold a quote or a backslash");
    return {"nss",
            {kNssModule, "configdir='sql:" + database +
                             "' certPrefix='' keyPrefix='' secmod='secmod.db' flags="},
            kNssTokenLabel};
  }
  return {"softhsm", {kSoftHsmModule, ""}, token_label(backend)};
}

void setup_tokens(const fs::path& dir, const fs::path& log, const DemoOptions& options) {
  const unsigned backends = options.backends;
  fs::path softhsm = dir / "softhsm";
  fs::create_directories(softhsm / "tokens");
  fs::path conf = softhsm / "softhsm2.conf";
  std::ofstream(conf) << "directories.tokendir = " << fs::absolute(softhsm / "tokens").string()
                      << "\nobjectstore.backend = file\nlog.level = ERROR\n";
  ::setenv("SOFTHSM2_CONF", fs::absolute(conf).c_str(), 1);
  constexpr std::string_view kDigits = "0123456789";
  std::string pin =
      persistent(dir / "secrets" / "hsm-pin", [&] { return random_string(kDigits, 12); });
  std::string so_pin =
      persistent(dir / "secrets" / "hsm-so-pin", [&] { return random_string(kDigits, 12); });
  // The marker records the tokens the state holds: "backends N", and for a mixed fleet
  // " vendors A,B" (an older state: one SoftHSM token).
  std::string holds = "backends " + std::to_string(backends);
  bool mixed = std::any_of(options.vendors.begin(), options.vendors.end(),
                           [](const std::string& vendor) { return vendor != "softhsm"; });
  for (std::size_t i = 0; mixed && i < options.vendors.size(); ++i)
    holds += (i == 0 ? " vendors " : ",") + options.vendors[i];
  fs::path marker = softhsm / "initialized";
  if (fs::exists(marker)) {
    std::string made = read_file(marker);
    made = made.starts_with("backends ") ? made.substr(0, made.find('\n')) : "backends 1";
    if (made != holds) {
      // "backends 2 vendors softhsm,nss" as "2 HSM token(s) (softhsm,nss)".
      auto words = [](const std::string& held) {
        std::size_t vendors = held.find(" vendors ");
        return held.substr(9, vendors == std::string::npos ? std::string::npos : vendors - 9) +
               " HSM token(s)" +
               (vendors == std::string::npos ? "" : " (" + held.substr(vendors + 9) + ")");
      };
      throw SetupError("this state holds " + words(made) + "; use another --state-dir for " +
                       words(holds));
    }
  } else {
    for (unsigned backend = 1; backend <= backends; ++backend) {
      DemoHsm member = demo_hsm(dir, options, backend);
      if (member.vendor == "nss") {
        // NSS softoken's database, with the HSM PIN as its password.
        fs::create_directories(dir / "nss");
        run({"certutil", "-N", "-d", "sql:" + fs::absolute(dir / "nss").string(), "-f",
             (dir / "secrets" / "hsm-pin").string()},
            log);
      } else {
        run({"softhsm2-util", "--init-token", "--free", "--label", member.token_label, "--so-pin",
             so_pin, "--pin", pin},
            log);
      }
    }
    std::ofstream(marker) << holds << "\n";
  }

  std::vector<hsm::OpenToken> tokens;
  for (unsigned backend = 1; backend <= backends; ++backend) {
    DemoHsm member = demo_hsm(dir, options, backend);
    auto token =
        hsm::open_token(member.module, {hsm::TokenSelector::By::kLabel, member.token_label},
                        {hsm::PinSource::From::kFile, (dir / "secrets" / "hsm-pin").string(), {}});
    if (!token)
      throw SetupError(token.error().message);
    tokens.push_back(std::move(*token));
  }
  for (const auto& [label, usage] : kDemoKeys) {
    // Made on an earlier start, on every token or on none: a half-made fleet would hold
    // different keys under one name.
    std::size_t holders = 0;
    for (const hsm::OpenToken& token : tokens) {
      auto listed = hsm::list_keys(*token.module, token.token.slot_id, token.pin);
      if (!listed)
        throw SetupError(listed.error().message);
      for (const hsm::KeyListing& key : *listed)
        holders += key.label == label ? 1u : 0u;
    }
    if (holders == tokens.size())
      continue;
    if (holders != 0) {
      throw SetupError(std::string("key ") + label +
                       " is on some demo tokens only; use another --state-dir");
    }
    // One HSM generates its key; a fleet gets the same material in every token, wiped after.
    std::array<std::uint8_t, 32> material{};
    if (backends > 1 && RAND_bytes(material.data(), static_cast<int>(material.size())) != 1)
      throw SetupError("RAND_bytes failed");
    for (const hsm::OpenToken& token : tokens) {
      auto created = hsm::create_aes_key(
          *token.module, token.token.slot_id, token.pin, label, usage,
          backends > 1 ? std::optional<std::span<const std::uint8_t, 32>>(material) : std::nullopt);
      if (!created) {
        OPENSSL_cleanse(material.data(), material.size());
        throw SetupError(std::string("creating key ") + label + ": " + created.error().message);
      }
    }
    OPENSSL_cleanse(material.data(), material.size());
  }
}

// The fault-injecting module built beside this binary (build/bin/xks-proxy,
// build/lib/libxks_fault_pkcs11.so): one copy per HSM in `fault_dir`, each with its empty
// control file and the real module it stands in front of (backend-K.target).
void setup_fault_modules(const fs::path& dir, const DemoOptions& options) {
  const fs::path fault_dir = options.fault_dir;
  fs::path built = fs::read_symlink("/proc/self/exe").parent_path().parent_path() / "lib" /
                   "libxks_fault_pkcs11.so";
  if (!fs::exists(built)) {
    throw SetupError("--fault-dir needs the fault-injecting module of a build tree, " +
                     built.string() + ", which is not there");
  }
  // Code the proxy loads: a directory of the user's own, and each copy put in place whole
  // (never rewritten under a running proxy).
  fs::create_directories(fault_dir);
  fs::permissions(fault_dir, fs::perms::owner_all);
  for (unsigned backend = 1; backend <= options.backends; ++backend) {
    std::string name = "backend-" + std::to_string(backend);
    fs::path staged = fault_dir / (name + ".so.new");
    fs::copy_file(built, staged, fs::copy_options::overwrite_existing);
    fs::rename(staged, fault_dir / (name + ".so"));
    if (!fs::exists(fault_dir / (name + ".ctl")))
      std::ofstream(fault_dir / (name + ".ctl"));
    std::ofstream(fault_dir / (name + ".target"))
        << demo_hsm(dir, options, backend).module.path << "\n";
  }
  ::setenv("XKS_FAULT_TARGET", kSoftHsmModule, 1);
}

void setup_tls(const fs::path& dir, const fs::path& log) {
  fs::path tls = dir / "tls";
  fs::create_directories(tls);
  if (fs::exists(tls / "server.pem") && fs::exists(tls / "client.pem"))
    return;
  auto issue = [&](const std::string& name, const std::string& cn, const std::string& extensions) {
    fs::path extfile = tls / (name + ".ext");
    std::ofstream(extfile) << extensions;
    run({"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", (tls / (name + "-key.pem")).string(), "-out", (tls / (name + ".csr")).string(),
         "-subj", "/CN=" + cn},
        log);
    run({"openssl", "x509", "-req", "-in", (tls / (name + ".csr")).string(), "-CA",
         (tls / "ca.pem").string(), "-CAkey", (tls / "ca-key.pem").string(), "-CAcreateserial",
         "-days", "825", "-sha256", "-extfile", extfile.string(), "-out",
         (tls / (name + ".pem")).string()},
        log);
    fs::remove(tls / (name + ".csr"));
    fs::remove(extfile);
  };
  run({"openssl",
       "req",
       "-x509",
       "-newkey",
       "ec",
       "-pkeyopt",
       "ec_paramgen_curve:P-256",
       "-nodes",
       "-keyout",
       (tls / "ca-key.pem").string(),
       "-out",
       (tls / "ca.pem").string(),
       "-days",
       "3650",
       "-sha256",
       "-subj",
       "/CN=xks-proxy demo CA",
       "-addext",
       "basicConstraints=critical,CA:TRUE",
       "-addext",
       "keyUsage=critical,keyCertSign,cRLSign"},
      log);
  issue("server", "localhost",
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
        "basicConstraints=CA:FALSE\n");
  issue("client", kKmsClientName,
        std::string("subjectAltName=DNS:") + kKmsClientName +
            "\nextendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n");
  for (const char* key : {"ca-key.pem", "server-key.pem", "client-key.pem"}) {
    fs::permissions(tls / key, fs::perms::owner_read | fs::perms::owner_write);
  }
}

sigv4::Credential setup_credential(const fs::path& dir) {
  fs::path id_file = dir / "secrets" / "sigv4-access-key-id";
  fs::path secret_file = dir / "secrets" / "sigv4-secret";
  if (fs::exists(id_file) && fs::exists(secret_file)) {
    return {read_file(id_file), read_file(secret_file)};
  }
  sigv4::Credential credential = generate_credential();
  write_private(id_file, credential.access_key_id);
  write_private(secret_file, credential.secret_access_key);
  return credential;
}

void write_config(const fs::path& dir, const DemoOptions& options,
                  const sigv4::Credential& credential) {
  fs::path abs = fs::absolute(dir);
  std::ofstream config(dir / "xks-proxy.toml");
  config << "# Written by `xks-proxy demo`; rewritten on every start.\n"
         << "[server]\nlisten = \"127.0.0.1:" << options.port << "\"\n"
         << "admin_listen = \"127.0.0.1:" << options.admin_port << "\"\n\n"
         << "[audit]\npath = \"" << (abs / "audit.log").string() << "\"\n"
         << "key_file = \"" << (abs / "secrets/audit-key").string() << "\"\n\n"
         << "[tls]\ncertificate_chain = \"" << (abs / "tls/server.pem").string() << "\"\n"
         << "private_key = \"" << (abs / "tls/server-key.pem").string() << "\"\n";
  if (options.mtls) {
    config << "client_ca = \"" << (abs / "tls/ca.pem").string() << "\"\n"
           << "client_names = [\"" << kKmsClientName << "\"]\n";
  }
  for (unsigned backend = 1; backend <= options.backends; ++backend) {
    DemoHsm member = demo_hsm(dir, options, backend);
    std::string module =
        options.fault_dir.empty()
            ? member.module.path
            : (fs::absolute(options.fault_dir) / ("backend-" + std::to_string(backend) + ".so"))
                  .string();
    config << (options.backends == 1 ? "\n[hsm]\n" : "\n[[hsm]]\n");
    if (options.backends > 1)
      config << "name = \"hsm-" << backend << "\"\n";
    config << "module = \"" << module << "\"\n";
    if (!member.module.init_reserved.empty())
      config << "init_reserved = \"" << member.module.init_reserved << "\"\n";
    config << "vendor_profile = \"" << member.vendor << "\"\n"
           << "token_label = \"" << member.token_label << "\"\n"
           << "pin_file = \"" << (abs / "secrets/hsm-pin").string() << "\"\n"
           << "health_key = \"" << kHealthKey << "\"\n";
    // Behind the fault module SoftHSM stands in for a network HSM: sized like one.
    config << (options.fault_dir.empty() ? "sessions = 8\n" : "sessions = 32\nworkers = 32\n");
  }
  // Keys are served only when listed: the demo's own (never the health key).
  config << "\n[[keystore]]\nprefix = \"" << kPrefix << "\"\nregions = [\"" << kRegion << "\"]\n"
         << "keys = [";
  for (const auto& [label, usage] : kDemoKeys) {
    if (std::string_view(label) != kHealthKey)
      config << (&label == &kDemoKeys[0].first ? "" : ", ") << "\"" << label << "\"";
  }
  config << "]\n\n"
         << "[[keystore.credential]]\naccess_key_id = \"" << credential.access_key_id << "\"\n"
         << "secret_file = \"" << (abs / "secrets/sigv4-secret").string() << "\"\n";
  write_private(dir / "kms-console.json",
                kms_console_json(std::string(kPrefix) + "/kms/xks/v1", credential));
}

}  // namespace

int demo_command(const DemoOptions& options) {
  fs::path dir = options.state_dir;
  sigv4::Credential credential;
  try {
    fs::create_directories(dir / "secrets");
    fs::permissions(dir, fs::perms::owner_all);
    fs::permissions(dir / "secrets", fs::perms::owner_all);
    fs::path log = dir / "setup.log";
    if (!options.vendors.empty()) {
      auto nss = std::count(options.vendors.begin(), options.vendors.end(), "nss");
      if (options.vendors.size() != options.backends) {
        throw SetupError("--vendors names " + std::to_string(options.vendors.size()) +
                         " HSM(s) for --backends " + std::to_string(options.backends));
      }
      if (nss > 1)
        throw SetupError("--vendors: NSS softoken serves one database per process: one nss");
    }
    setup_tokens(dir, log, options);
    if (!options.fault_dir.empty())
      setup_fault_modules(dir, options);
    setup_tls(dir, log);
    credential = setup_credential(dir);
    // The audit chain's HMAC key: 256 random bits as hex.
    persistent(dir / "secrets" / "audit-key",
               [] { return random_string("0123456789abcdef", 2 * kAuditKeyMinBytes); });
    write_config(dir, options, credential);
  } catch (const std::exception& error) {
    std::cerr << "xks-proxy demo: " << error.what() << "\n";
    return 1;
  }
  fs::path abs = fs::absolute(dir);
  std::cout
      << "xks-proxy demo state in " << abs.string() << "\n"
      << "  configuration:  " << (abs / "xks-proxy.toml").string() << "\n"
      << "  KMS console:    " << (abs / "kms-console.json").string() << "\n"
      << "  CA certificate: " << (abs / "tls/ca.pem").string() << "\n"
      << "Try it (the secret is in " << (abs / "secrets/sigv4-secret").string() << "):\n"
      << "  curl --cacert " << (abs / "tls/ca.pem").string() << " --aws-sigv4 aws:amz:" << kRegion
      << ":kms-xks-proxy \\\n    --user \"" << credential.access_key_id << ":$(cat "
      << (abs / "secrets/sigv4-secret").string()
      << ")\" \\\n    -H 'Content-Type: application/json' "
      << "-d '{\"requestMetadata\":{\"kmsRequestId\":\"1\",\"kmsOperation\":\"KmsHealthCheck\"}}' "
      << "\\\n    https://localhost:" << options.port << kPrefix << "/kms/xks/v1/health\n"
      << std::flush;
  if (options.setup_only)
    return 0;
  return serve_command((dir / "xks-proxy.toml").string());
}

}  // namespace xks::proxy
