// AES-256-GCM encryptions per second on a SoftHSM token: a raw PKCS#11 loop (the ceiling; on
// the proxy's own token when bench/run-all asks),
// this layer called inline, and this layer behind the HSM executor with 1, 2 or 4 workers —
// the numbers that choose the default dispatch policy.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <latch>

#include "softhsm_token.h"
#include "xks/hsm/hsm_executor.h"
#include "xks/hsm/key_admin.h"
#include "xks/hsm/key_service.h"
#include "xks/hsm/pin.h"
#include "xks/hsm/session.h"

namespace {

using namespace xks;
using namespace std::chrono_literals;

[[noreturn]] void die(const std::string& reason) {
  std::fprintf(stderr, "hsm_gcm_benchmark: %s\n", reason.c_str());
  std::exit(1);
}

// One token, module and pool for the whole run.
struct Environment {
  Environment() {
    auto loaded = hsm::Pkcs11Module::load({test::kSoftHsmModule});
    if (!loaded)
      die(loaded.error().message);
    module = *loaded;
    auto token_info = module->find_token({hsm::TokenSelector::By::kLabel, token.label()});
    if (!token_info)
      die(token_info.error().message);
    slot = token_info->slot_id;
    if (auto key = hsm::create_aes_key(*module, slot, token.user_pin(), "bench", {}); !key) {
      die(key.error().message);
    }
    auto opened = hsm::SessionPool::open(module, slot, token.user_pin(), {.sessions = 8});
    if (!opened)
      die(opened.error().message);
    pool = std::move(*opened);
    service = std::make_unique<hsm::KeyService>(*pool, *hsm::vendor_profile("softhsm"));
  }

  test::SoftHsmToken token;
  std::shared_ptr<hsm::Pkcs11Module> module;
  CK_SLOT_ID slot = 0;
  std::unique_ptr<hsm::SessionPool> pool;
  std::unique_ptr<hsm::KeyService> service;
};

Environment& environment() {
  static Environment instance;
  return instance;
}

const hsm::Bytes kPlaintext(32, 0x42);
const hsm::Bytes kAad = {0, 0, 0};

// The token, PIN and key the raw loop runs on: the benchmark's own, or — when bench/run-all sets
// XKS_BENCH_TOKEN, XKS_BENCH_PIN_FILE and XKS_BENCH_KEY (and SOFTHSM2_CONF) — the proxy's.
struct RawTarget {
  std::shared_ptr<hsm::Pkcs11Module> module;
  CK_SLOT_ID slot = 0;
  std::string pin;
  std::string key_label;
};

RawTarget raw_target() {
  const char* token = std::getenv("XKS_BENCH_TOKEN");
  const char* pin_file = std::getenv("XKS_BENCH_PIN_FILE");
  const char* key = std::getenv("XKS_BENCH_KEY");
  if (!token || !pin_file || !key) {
    Environment& env = environment();
    return {env.module, env.slot, env.token.user_pin(), "bench"};
  }
  auto module = hsm::Pkcs11Module::load({test::kSoftHsmModule});
  if (!module)
    die(module.error().message);
  auto token_info = (*module)->find_token({hsm::TokenSelector::By::kLabel, token});
  if (!token_info)
    die(token_info.error().message);
  auto pin = hsm::read_pin({hsm::PinSource::From::kFile, pin_file, {}});
  if (!pin)
    die(pin.error().message);
  return {*module, token_info->slot_id, *pin, key};
}

void BM_RawPkcs11Encrypt(benchmark::State& state) {
  RawTarget target = raw_target();
  CK_FUNCTION_LIST& api = target.module->api();
  auto session = hsm::open_logged_in_session(api, target.slot, 0, target.pin);
  if (!session)
    die(session.error().message);
  auto keys = hsm::find_secret_keys(api, *session, target.key_label);
  if (!keys || keys->size() != 1)
    die("bench key not found");
  CK_BYTE iv[12];
  CK_BYTE output[32 + 16];
  for (auto _ : state) {
    CK_GCM_PARAMS params{iv, 12, 96, const_cast<CK_BYTE*>(kAad.data()), kAad.size(), 128};
    CK_MECHANISM mechanism{CKM_AES_GCM, &params, sizeof params};
    CK_ULONG length = sizeof output;
    if (api.C_GenerateRandom(*session, iv, sizeof iv) != CKR_OK ||
        api.C_EncryptInit(*session, &mechanism, keys->front()) != CKR_OK ||
        api.C_Encrypt(*session, const_cast<CK_BYTE*>(kPlaintext.data()), kPlaintext.size(), output,
                      &length) != CKR_OK) {
      die("raw encrypt failed");
    }
    benchmark::DoNotOptimize(output);
  }
  api.C_CloseSession(*session);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RawPkcs11Encrypt)->UseRealTime();

void BM_KeyServiceEncryptInline(benchmark::State& state) {
  Environment& env = environment();
  for (auto _ : state) {
    auto sealed =
        env.service->encrypt("bench", kPlaintext, {}, {}, hsm::SessionPool::Clock::now() + 1s);
    if (!sealed)
      die(sealed.error().message);
    benchmark::DoNotOptimize(sealed);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_KeyServiceEncryptInline)->Threads(1)->Threads(2)->UseRealTime();

// One submitting thread keeps `batch` encryptions in flight on an executor of N workers.
void BM_KeyServiceEncryptOnExecutor(benchmark::State& state) {
  Environment& env = environment();
  const auto workers = static_cast<std::size_t>(state.range(0));
  constexpr std::ptrdiff_t kBatch = 256;
  hsm::HsmExecutor executor(workers, kBatch);
  for (auto _ : state) {
    std::latch done(kBatch);
    for (std::ptrdiff_t i = 0; i < kBatch; ++i) {
      bool queued = executor.submit([&] {
        auto sealed =
            env.service->encrypt("bench", kPlaintext, {}, {}, hsm::SessionPool::Clock::now() + 1s);
        if (!sealed)
          die(sealed.error().message);
        done.count_down();
      });
      if (!queued)
        die("executor queue full");
    }
    done.wait();
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_KeyServiceEncryptOnExecutor)->Arg(1)->Arg(2)->Arg(4)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
