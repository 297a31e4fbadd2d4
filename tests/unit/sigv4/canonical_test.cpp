// Canonicalisation pieces: header values, query strings, X-Amz-Date, canonical requests.
#include "xks/sigv4/canonical.h"

#include <gtest/gtest.h>

#include "owned_request.h"

namespace xks::sigv4 {
namespace {

using namespace std::chrono;

TEST(CanonicalHeaderValue, TrimsAndCollapsesWhitespace) {
  EXPECT_EQ(canonical_header_value("  a   b\t\tc  "), "a b c");
  EXPECT_EQ(canonical_header_value("value1\r\n  value2"), "value1 value2");
  EXPECT_EQ(canonical_header_value("\"a   b\""), "\"a b\"");
  EXPECT_EQ(canonical_header_value("   "), "");
  EXPECT_EQ(canonical_header_value("plain"), "plain");
}

TEST(CanonicalQuery, SortsByNameThenValueAndKeepsEncoding) {
  EXPECT_EQ(canonical_query(""), "");
  EXPECT_EQ(canonical_query("b=2&a=1"), "a=1&b=2");
  EXPECT_EQ(canonical_query("a=2&a=1"), "a=1&a=2");
  EXPECT_EQ(canonical_query("flag&a=%20"), "a=%20&flag=");
  EXPECT_EQ(canonical_query("&&a=1&"), "a=1");
}

TEST(AmzDate, FormatsUtcSeconds) {
  sys_seconds time = sys_days{year{2026} / November / 23} + hours{7} + minutes{5} + seconds{9};
  EXPECT_EQ(format_amz_date(time), "20261123T070509Z");
  EXPECT_EQ(format_amz_date(time + milliseconds{999}), "20261123T070509Z");
}

TEST(AmzDate, ParsesWhatItFormats) {
  sys_seconds time = sys_days{year{2024} / February / 29} + hours{23} + minutes{59} + seconds{59};
  EXPECT_EQ(parse_amz_date(format_amz_date(time)), time);
}

TEST(AmzDate, RejectsEverythingElse) {
  for (const char* bad :
       {"", "20261123T070509", "20261123T070509z", "20261123t070509Z", "2026-11-23T07:05:09Z",
        "20261123T0705090Z", "20261123 070509Z", "20261131T070509Z", "20230229T070509Z",
        "20261323T070509Z", "20261123T240000Z", "20261123T236000Z", "20261123T235960Z",
        "2026112aT070509Z", "+0261123T070509Z"}) {
    EXPECT_FALSE(parse_amz_date(bad).has_value()) << bad;
  }
}

TEST(CanonicalRequest, UsesTheRawPathAndHashesTheBody) {
  test::OwnedRequest request{"POST",
                             "/a%2Fb//kms/xks/v1/keys/k.1/encrypt",
                             "",
                             {{"Host", "xks.example.com:8443"}, {"X-Amz-Date", "20261123T070509Z"}},
                             "{}"};
  auto canonical = canonical_request(request.view(), "host;x-amz-date");
  ASSERT_TRUE(canonical.has_value());
  EXPECT_EQ(*canonical,
            "POST\n/a%2Fb//kms/xks/v1/keys/k.1/encrypt\n\nhost:xks.example.com:8443\n"
            "x-amz-date:20261123T070509Z\n\nhost;x-amz-date\n" +
                sha256_hex("{}"));
}

TEST(CanonicalRequest, MatchesHeaderNamesCaseInsensitively) {
  test::OwnedRequest request{"POST", "/", "", {{"HOST", "h"}, {"x-AMZ-date", "d"}}, ""};
  auto canonical = canonical_request(request.view(), "host;x-amz-date");
  ASSERT_TRUE(canonical.has_value());
  EXPECT_NE(canonical->find("host:h\nx-amz-date:d\n"), std::string::npos);
}

TEST(CanonicalRequest, FailsWhenASignedHeaderIsAbsent) {
  test::OwnedRequest request{"POST", "/", "", {{"Host", "h"}}, ""};
  auto canonical = canonical_request(request.view(), "host;x-amz-date");
  ASSERT_FALSE(canonical.has_value());
  EXPECT_EQ(canonical.error(), Failure::kSignedHeaderMissing);
}

TEST(Sha256Hex, KnownDigests) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace xks::sigv4
