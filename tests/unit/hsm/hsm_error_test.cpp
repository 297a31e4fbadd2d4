// Pure pieces of the HSM layer: CKR names and categories, PIN sources, the XKS AAD layout,
// key-usage and vendor-profile names.
#include "xks/hsm/hsm_error.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "xks/hsm/aes_gcm.h"
#include "xks/hsm/key_admin.h"
#include "xks/hsm/pin.h"
#include "xks/hsm/vendor_profile.h"

namespace xks::hsm {
namespace {

TEST(CkrName, NamesStandardCodesAndShowsVendorCodesInHex) {
  EXPECT_EQ(ckr_name(CKR_OK), "CKR_OK");
  EXPECT_EQ(ckr_name(CKR_PIN_INCORRECT), "CKR_PIN_INCORRECT");
  EXPECT_EQ(ckr_name(CKR_ENCRYPTED_DATA_INVALID), "CKR_ENCRYPTED_DATA_INVALID");
  EXPECT_EQ(ckr_name(CKR_VENDOR_DEFINED + 1), "CKR_0x80000001");
}

TEST(Classify, MapsCodesToWhatTheProxyDoesAboutThem) {
  EXPECT_EQ(classify(CKR_KEY_FUNCTION_NOT_PERMITTED), HsmErrorKind::kKeyUsage);
  EXPECT_EQ(classify(CKR_ENCRYPTED_DATA_INVALID), HsmErrorKind::kInvalidCiphertext);
  EXPECT_EQ(classify(CKR_ENCRYPTED_DATA_LEN_RANGE), HsmErrorKind::kInvalidCiphertext);
  for (CK_RV rv : {CKR_SESSION_HANDLE_INVALID, CKR_SESSION_CLOSED, CKR_USER_NOT_LOGGED_IN}) {
    EXPECT_EQ(classify(rv), HsmErrorKind::kSessionLost) << ckr_name(rv);
  }
  for (CK_RV rv : {CKR_DEVICE_ERROR, CKR_DEVICE_REMOVED, CKR_TOKEN_NOT_PRESENT}) {
    EXPECT_EQ(classify(rv), HsmErrorKind::kUnavailable) << ckr_name(rv);
  }
  EXPECT_EQ(classify(CKR_PIN_INCORRECT), HsmErrorKind::kLoginFailed);
  EXPECT_EQ(classify(CKR_PIN_LOCKED), HsmErrorKind::kLoginFailed);
  EXPECT_EQ(classify(CKR_KEY_HANDLE_INVALID), HsmErrorKind::kKeyHandleInvalid);
  EXPECT_EQ(classify(CKR_FUNCTION_FAILED), HsmErrorKind::kOther);
  HsmError error = HsmError::from_rv("C_Login", CKR_PIN_INCORRECT);
  EXPECT_EQ(error.message, "C_Login: CKR_PIN_INCORRECT");
  EXPECT_EQ(error.rv, CKR_PIN_INCORRECT);
}

TEST(ReadPin, FromAFileWithoutItsNewline) {
  auto path = std::filesystem::temp_directory_path() / "xks-pin-test";
  std::ofstream(path) << "crypto-user:s3cret\n";
  auto pin = read_pin({PinSource::From::kFile, path.string(), {}});
  std::filesystem::remove(path);
  ASSERT_TRUE(pin.has_value());
  EXPECT_EQ(*pin, "crypto-user:s3cret");  // CloudHSM's user:password passes unchanged
}

TEST(ReadPin, FromTheEnvironment) {
  ::setenv("XKS_TEST_PIN", "1234", 1);
  auto pin = read_pin({PinSource::From::kEnvironment, "XKS_TEST_PIN", {}});
  ASSERT_TRUE(pin.has_value());
  EXPECT_EQ(*pin, "1234");
}

TEST(ReadPin, MissingOrEmptyIsAnError) {
  ::unsetenv("XKS_TEST_PIN_UNSET");
  EXPECT_FALSE(read_pin({PinSource::From::kEnvironment, "XKS_TEST_PIN_UNSET", {}}).has_value());
  EXPECT_FALSE(read_pin({PinSource::From::kFile, "/nonexistent/pin", {}}).has_value());
  ::setenv("XKS_TEST_PIN", "", 1);
  EXPECT_FALSE(read_pin({PinSource::From::kEnvironment, "XKS_TEST_PIN", {}}).has_value());
}

TEST(XksAad, LengthPrefixesBothParts) {
  const std::uint8_t aad[] = {'a', 'b', 'c'};
  const std::uint8_t metadata[] = {'m'};
  EXPECT_EQ(*xks_aad(aad, metadata), (Bytes{0, 3, 'a', 'b', 'c', 1, 'm'}));
  EXPECT_EQ(*xks_aad({}, {}), (Bytes{0, 0, 0}));
  Bytes long_aad(8192, 7);
  Bytes built = *xks_aad(long_aad, {});
  ASSERT_EQ(built.size(), 8192u + 3);
  EXPECT_EQ(built[0], 0x20);
  EXPECT_EQ(built[1], 0x00);
  EXPECT_EQ(built.back(), 0);
  EXPECT_FALSE(xks_aad(Bytes(65536, 1), {}).has_value());
  EXPECT_FALSE(xks_aad({}, Bytes(256, 1)).has_value());
}

TEST(KeyUsageNames, ParseEveryForm) {
  EXPECT_TRUE(parse_key_usage("encrypt,decrypt")->encrypt);
  EXPECT_TRUE(parse_key_usage("encrypt,decrypt")->decrypt);
  EXPECT_FALSE(parse_key_usage("encrypt")->decrypt);
  EXPECT_FALSE(parse_key_usage("decrypt")->encrypt);
  EXPECT_FALSE(parse_key_usage("none")->encrypt);
  EXPECT_FALSE(parse_key_usage("sign").has_value());
}

TEST(VendorProfiles, EachHsmDrivesTheIvItsWay) {
  EXPECT_EQ(vendor_profile("softhsm")->iv_source, IvSource::kProxyFromHsmRng);
  EXPECT_EQ(vendor_profile("cloudhsm")->iv_source, IvSource::kHsmFillsBuffer);
  EXPECT_EQ(vendor_profile("nshield")->iv_source, IvSource::kHsmFillsBuffer);
  EXPECT_EQ(vendor_profile("luna")->iv_source, IvSource::kHsmAppendsToOutput);
  EXPECT_FALSE(vendor_profile("other").has_value());
  EXPECT_EQ(iv_source("hsm-append"), IvSource::kHsmAppendsToOutput);
  EXPECT_FALSE(iv_source("random").has_value());
}

}  // namespace
}  // namespace xks::hsm
