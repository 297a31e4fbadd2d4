// Http1RequestReader: requests read whole however the bytes are split, and every limit
// enforced before more than max_header_bytes of unparsed input is held.
#include "http1_request_reader.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

namespace xks::proxy {
namespace {

using Status = Http1RequestReader::Status;

HttpLimits small_limits() {
  HttpLimits limits;
  limits.max_header_bytes = 1024;
  limits.max_body_bytes = 2048;
  return limits;
}

// Feeds `input` in pieces of `piece` bytes; returns every status reached and the requests.
struct Outcome {
  std::vector<HttpRequest> requests;
  Status last = Status::kNeedMore;
  std::size_t fed = 0;  // bytes taken before the reader stopped
};

Outcome feed(Http1RequestReader& reader, const std::string& input, std::size_t piece) {
  Outcome outcome;
  std::size_t at = 0;
  while (at < input.size()) {
    auto space = reader.prepare();
    EXPECT_GT(space.size(), 0u);
    std::size_t n = std::min({piece, space.size(), input.size() - at});
    std::memcpy(space.data(), input.data() + at, n);
    at += n;
    outcome.last = reader.commit(n);
    while (outcome.last == Status::kComplete) {
      outcome.requests.push_back(reader.take_request());
      reader.next_request();
      outcome.last = reader.parse();
    }
    if (outcome.last == Status::kRefused)
      break;
  }
  outcome.fed = at;
  return outcome;
}

const std::string kRequest =
    "POST /kms/xks/v1/health HTTP/1.1\r\nHost: localhost:8443\r\nX-Amz-Date: "
    "20261129T100000Z\r\nContent-Length: 17\r\n\r\n{\"requestMeta\":1}";

TEST(Http1RequestReaderTest, ReadsTheSameRequestWhateverThePieces) {
  HttpLimits limits = small_limits();
  for (std::size_t piece : {std::size_t{1}, std::size_t{2}, std::size_t{7}, kRequest.size()}) {
    Http1RequestReader reader(limits);
    Outcome outcome = feed(reader, kRequest, piece);
    ASSERT_EQ(outcome.requests.size(), 1u) << "piece " << piece;
    const HttpRequest& request = outcome.requests[0];
    EXPECT_EQ(request.method, "POST");
    EXPECT_EQ(request.target, "/kms/xks/v1/health");
    EXPECT_EQ(request.body, "{\"requestMeta\":1}");
    ASSERT_EQ(request.headers.size(), 3u);
    EXPECT_EQ(request.headers[0].first, "Host");
    EXPECT_EQ(request.headers[0].second, "localhost:8443");
  }
}

TEST(Http1RequestReaderTest, PipelinedRequestsComeOutOneByOne) {
  HttpLimits limits = small_limits();
  Http1RequestReader reader(limits);
  Outcome outcome = feed(reader, kRequest + kRequest + kRequest, 1000);
  EXPECT_EQ(outcome.requests.size(), 3u);
  EXPECT_EQ(outcome.last, Status::kNeedMore);
  EXPECT_FALSE(reader.has_buffered_bytes());
}

TEST(Http1RequestReaderTest, ChunkedBodiesAreJoinedAndTrailersAreNotMergedIntoTheHeaders) {
  HttpLimits limits = small_limits();
  std::string chunked =
      "POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3;name=value\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n";
  for (std::size_t piece : {std::size_t{1}, chunked.size()}) {
    Http1RequestReader reader(limits);
    Outcome outcome = feed(reader, chunked, piece);
    ASSERT_EQ(outcome.requests.size(), 1u);
    EXPECT_EQ(outcome.requests[0].body, "abcde");
    for (const auto& [name, value] : outcome.requests[0].headers)
      EXPECT_NE(name, "X-Trailer");
  }
}

TEST(Http1RequestReaderTest, TrailersCannotReplaceOrAddToTheHeaderFields) {
  HttpLimits limits = small_limits();
  Http1RequestReader reader(limits);
  // Beast keeps same-named fields together: a trailer named like a header lands among them.
  Outcome outcome = feed(reader,
                         "POST /x HTTP/1.1\r\nAuthorization: real\r\nHost: h\r\n"
                         "Transfer-Encoding: chunked\r\nX-Last: 1\r\n\r\n2\r\n{}\r\n0\r\n"
                         "Authorization: injected\r\nConnection: close\r\n\r\n",
                         1000);
  ASSERT_EQ(outcome.requests.size(), 1u);
  std::vector<std::pair<std::string, std::string>> expected = {
      {"Authorization", "real"}, {"Host", "h"}, {"Transfer-Encoding", "chunked"}, {"X-Last", "1"}};
  EXPECT_EQ(outcome.requests[0].headers, expected);
  EXPECT_TRUE(reader.keep_alive());
}

TEST(Http1RequestReaderTest, AnswersExpect100ContinueOnlyWhileTheBodyIsMissing) {
  HttpLimits limits = small_limits();
  Http1RequestReader reader(limits);
  std::string head =
      "POST /x HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
  Outcome outcome = feed(reader, head, head.size());
  EXPECT_EQ(outcome.last, Status::kNeedMore);
  EXPECT_TRUE(reader.expects_continue());
  outcome = feed(reader, "{}", 2);
  EXPECT_EQ(outcome.requests.size(), 1u);
}

struct LimitCase {
  const char* name;
  std::string input;
  HttpRefusal reason;
};

class Http1LimitTest : public ::testing::TestWithParam<LimitCase> {};

TEST_P(Http1LimitTest, IsRefusedBeforeMoreThanTheBufferIsRead) {
  HttpLimits limits = small_limits();
  for (std::size_t piece : {std::size_t{1}, std::size_t{100}, std::size_t{4096}}) {
    Http1RequestReader reader(limits);
    Outcome outcome = feed(reader, GetParam().input, piece);
    ASSERT_EQ(outcome.last, Status::kRefused) << "piece " << piece;
    EXPECT_EQ(reader.refusal(), GetParam().reason);
    // Read no further than a header block, then the body limit in its framing (one-byte
    // chunks cost 10 bytes each): the refusal comes as soon as the limit is crossed.
    EXPECT_LE(outcome.fed, limits.max_header_bytes * 2 + limits.max_body_bytes * 10 + 4096);
    EXPECT_LT(outcome.fed, GetParam().input.size());
  }
}

const std::string kHead = "POST /x HTTP/1.1\r\nHost: h\r\n";
const std::string kChunked = kHead + "Transfer-Encoding: chunked\r\n\r\n";

std::string repeat(const std::string& text, std::size_t times) {
  std::string out;
  for (std::size_t i = 0; i < times; ++i)
    out += text;
  return out;
}

INSTANTIATE_TEST_SUITE_P(
    EveryLimit, Http1LimitTest,
    ::testing::Values(
        LimitCase{"request_line", "GET /" + std::string(100000, 'a'), HttpRefusal::kHeaderBytes},
        LimitCase{"header_block", kHead + repeat("X-A: b\r\n", 20000), HttpRefusal::kHeaderBytes},
        LimitCase{"one_header", kHead + "X-A: " + std::string(100000, 'b'),
                  HttpRefusal::kHeaderBytes},
        LimitCase{"chunk_extension", kChunked + "5;ext=" + std::string(100000, 'x'),
                  HttpRefusal::kFramingBytes},
        LimitCase{"chunk_size_digits", kChunked + std::string(100000, '0'),
                  HttpRefusal::kFramingBytes},
        LimitCase{"trailers", kChunked + "2\r\n{}\r\n0\r\n" + repeat("X-T: 1\r\n", 20000),
                  HttpRefusal::kFramingBytes},
        LimitCase{"many_tiny_fields",
                  kHead + repeat("a:\r\n", 100) + "\r\n" + std::string(100000, 'x'),
                  HttpRefusal::kHeaderBytes},
        LimitCase{"declared_body",
                  kHead + "Content-Length: 100000\r\n\r\n" + std::string(100000, 'x'),
                  HttpRefusal::kBodyBytes},
        LimitCase{"chunked_body", kChunked + repeat("1;e=v\r\nx\r\n", 20000),
                  HttpRefusal::kBodyBytes},
        LimitCase{"one_big_chunk", kChunked + "100000\r\n" + std::string(100000, 'x'),
                  HttpRefusal::kBodyBytes},
        LimitCase{"malformed", "NOT HTTP AT ALL\r\n\r\n" + std::string(100000, 'x'),
                  HttpRefusal::kMalformed}),
    [](const auto& test) { return std::string(test.param.name); });

}  // namespace
}  // namespace xks::proxy
